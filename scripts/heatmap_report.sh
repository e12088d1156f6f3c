#!/usr/bin/env bash
# The article's job "heatmap report of the best model", with the toonvision CLI only.
#
# Takes the output folder of 'toonvision compare' (RUN_DIR), picks its best model (the
# best_<config>.keras with the highest test accuracy, lower test loss breaking ties, or the
# configuration named by CONFIG) and writes a heatmap report of it on the test split it was
# evaluated on (the split seed recorded with the model), with the comparison's curves, box
# plots and summary table: OUT/index.html, which opens from disk in any browser.
#
# Usage:
#   scripts/heatmap_report.sh RUN_DIR [DATA_DIR] [OUT]
# Arguments (defaults in brackets):
#   RUN_DIR   a 'toonvision compare --out' folder holding best_<config>.keras models
#   DATA_DIR  the data folder the comparison was trained on [data]
#   OUT       the report folder [reports/<name of RUN_DIR>]
# Environment:
#   CONFIG      report on best_<CONFIG>.keras instead of the best of all configurations
#   SAMPLES     images shown with Grad-CAM heatmaps [8]
#   FILTERS     filters drawn per convolution layer [8]
#   EXPLAIN     images on which every explanation method is scored (report --explain) [8]
#   TOONVISION  the command to run [toonvision, or .venv/bin/toonvision when present]
# Exit status: 0 when the report was written, 1 when no model was found or the report
# failed, 2 on a usage error.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    usage
    exit 0
fi
if [[ $# -lt 1 || $# -gt 3 ]]; then
    usage >&2
    exit 2
fi

RUN_DIR=${1%/}
DATA_DIR=${2:-data}
OUT=${3:-reports/$(basename "$RUN_DIR")}
DEFAULT_TOONVISION=toonvision
PYTHON=python3
if [[ -x "$(dirname "$0")/../.venv/bin/toonvision" ]]; then
    DEFAULT_TOONVISION="$(dirname "$0")/../.venv/bin/toonvision"
    PYTHON="$(dirname "$0")/../.venv/bin/python"
fi
TOONVISION=${TOONVISION:-$DEFAULT_TOONVISION}

if [[ ! -d $RUN_DIR ]]; then
    echo "heatmap_report: $RUN_DIR is not a folder" >&2
    exit 2
fi

if [[ -n ${CONFIG:-} ]]; then
    MODEL="$RUN_DIR/best_${CONFIG}.keras"
else
    # Each best model's sidecar (<model>.json) records its test metrics.
    MODEL=$("$PYTHON" - "$RUN_DIR" <<'PYTHON'
import json, pathlib, sys
candidates = []
for model in sorted(pathlib.Path(sys.argv[1]).glob("best_*.keras")):
    sidecar = model.with_name(model.name + ".json")
    try:
        metrics = json.loads(sidecar.read_text())["extra"]["test_metrics"]
        candidates.append((metrics["accuracy"], -metrics["loss"], str(model)))
    except (OSError, KeyError, ValueError):
        candidates.append((float("-inf"), float("-inf"), str(model)))
print(max(candidates)[2] if candidates else "")
PYTHON
)
fi
if [[ -z $MODEL || ! -f $MODEL ]]; then
    echo "heatmap_report: no best model in $RUN_DIR (expected best_<config>.keras from" \
         "'toonvision compare')" >&2
    exit 1
fi

echo "heatmap report of $MODEL"
"$TOONVISION" report "$MODEL" --data-dir "$DATA_DIR" --run-dir "$RUN_DIR" --out "$OUT" \
    --samples "${SAMPLES:-8}" --filters "${FILTERS:-8}" --explain "${EXPLAIN:-8}" || exit 1
