"""The article's jobs as scripts: each explains itself with --help (README: "Each prints its
usage with `--help`") and refuses an option it does not know, creating nothing."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).parents[1] / "scripts").glob("*.sh"))


def run(script: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(script), *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin",
                                                      "TOONVISION": "false"})


@pytest.mark.parametrize("script", SCRIPTS, ids=[script.name for script in SCRIPTS])
def test_every_script_prints_its_own_usage_with_help(script: Path, tmp_path: Path) -> None:
    header = script.read_text(encoding="utf-8").splitlines()[1].removeprefix("# ")
    for flag in ("-h", "--help"):
        result = run(script, flag, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(header) and "Usage" in result.stdout
        assert "toonvision compare [-h]" not in result.stdout   # its own text, not compare's
    assert list(tmp_path.iterdir()) == []


def test_pokemon_script_takes_no_option_for_its_output_folder(tmp_path: Path) -> None:
    script = next(script for script in SCRIPTS if script.name == "pokemon_challenge.sh")
    result = run(script, "--out", cwd=tmp_path)
    assert result.returncode == 2 and "Usage" in result.stderr
    assert list(tmp_path.iterdir()) == []
