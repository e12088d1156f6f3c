"""A real Ray cluster of two nodes on this machine trains a comparison as the serial engine does.

`ray start --head` (one CPU), then a second node joining it with the head's token (one
CPU), both on 127.0.0.1 only and with token authentication on (a token of the test's own,
in `RAY_AUTH_TOKEN`, so `~/.ray` is left alone); then `toonvision compare --address` in its
own process, as a user runs it. The nodes are stopped by their process ids (not `ray stop`,
which would end every Ray process of the machine, other users' too).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import write_easy_crops
from test_engine import _descendants, _metrics

from toonvision.model_utils.comparison.runlog import LOG_FILE, read_log
from toonvision.model_utils.engine.choose import ray_available

RAY = Path(sys.executable).parent / "ray"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not ray_available() or not RAY.is_file(),
                       reason="Ray is not installed (pip install 'toonvision[parallel]')"),
]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _processes_of(folder: str) -> list[int]:
    """The processes whose command line names `folder` (the cluster's temp folder), and
    everything they started."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if folder.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return sorted(set(found) | {child for pid in found for child in _descendants(pid)})


def _stop(pids: list[int]) -> None:
    """SIGTERM, then SIGKILL to whatever is left after 10 s."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sent)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists()
                                                  for pid in pids):
            time.sleep(0.2)


@pytest.fixture
def two_node_cluster():
    """(address, environment): a head and a second node, one CPU each, on 127.0.0.1."""
    folder = tempfile.mkdtemp(prefix="tvray")   # short: Ray's socket paths must stay short
    port = _free_port()
    environment = {**os.environ, "RAY_AUTH_MODE": "token",
                   "RAY_AUTH_TOKEN": secrets.token_hex(32), "TF_CPP_MIN_LOG_LEVEL": "3",
                   "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    environment.pop("RAY_ADDRESS", None)
    common = ["--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
    try:
        for arguments in (["--head", "--port", str(port), "--temp-dir", folder,
                           "--include-dashboard=false"],
                          ["--address", f"127.0.0.1:{port}"]):
            started = subprocess.run([str(RAY), "start", *arguments, *common], env=environment,
                                     capture_output=True, text=True, timeout=180)
            assert started.returncode == 0, started.stdout[-2000:] + started.stderr[-2000:]
        yield f"127.0.0.1:{port}", environment
    finally:
        _stop(_processes_of(folder))
        shutil.rmtree(folder, ignore_errors=True)


def test_a_two_node_cluster_trains_the_serial_engines_comparison(tmp_path, two_node_cluster):
    address, environment = two_node_cluster
    write_easy_crops(tmp_path / "data", per_class=8)
    common = ["compare", "--data-dir", str(tmp_path / "data"), "--image-size", "48", "48",
              "--runs", "2", "--epochs", "1", "--cache-dir", str(tmp_path / "cache"),
              "--no-tracking", "--threads-per-worker", "1"]

    def compare(*options: str) -> subprocess.CompletedProcess:
        done = subprocess.run([sys.executable, "-m", "toonvision", *common, *options],
                              env=environment, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done

    compare("--workers", "1", "--out", str(tmp_path / "serial"))
    clustered = compare("--address", address, "--out", str(tmp_path / "cluster"))
    assert f"the Ray cluster at {address}" in clustered.stderr

    reference, _ = read_log(tmp_path / "serial" / LOG_FILE)
    records, torn = read_log(tmp_path / "cluster" / LOG_FILE)
    assert torn == 0 and len(records) == 4
    assert _metrics(records) == _metrics(reference)   # 1 thread each: bit for bit
    # One worker per node (each node has one CPU and each worker asks for one).
    assert {record.worker for record in records} == {"0", "1"}
    assert {record.threads for record in records} == {1}
