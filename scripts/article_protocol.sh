#!/usr/bin/env bash
# The ToonVision article's full protocol: baseline vs optimized, 200 runs x 25 epochs, 600x200
# input, a new stratified 60/20/20 split per run (seed 0 + run), the article's best-model rule.
#
# Usage:  scripts/article_protocol.sh [extra 'toonvision compare' options]
# Environment (all optional):
#   DATA_DIR       data root written by 'toonvision extract' (default: data)
#   OUT            the comparison folder (default: runs/article)
#   PYTHON         the interpreter with toonvision installed (default: .venv/bin/python if
#                  present, else python3)
#   KERAS_BACKEND  tensorflow | torch | jax; default: tensorflow when importable, else torch,
#                  else jax. A CUDA TensorFlow, torch or jax uses the GPU with no change.
#
# The script always passes --resume: the first call starts the comparison, and calling it
# again after a stop (power cut, Ctrl-C, kill) continues where it stopped, losing at most the
# run in progress. Estimates and results: docs/compare.md.
# -h or --help prints this text; 'toonvision compare --help' explains the extra options.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    usage
    exit 0
fi

cd "$(dirname "$0")/.."
DATA_DIR="${DATA_DIR:-data}"
OUT="${OUT:-runs/article}"
if [ -z "${PYTHON:-}" ]; then
    if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

if [ -z "${KERAS_BACKEND:-}" ]; then
    for backend in tensorflow torch jax; do
        if "$PYTHON" -c "import $backend" 2>/dev/null; then
            export KERAS_BACKEND="$backend"
            break
        fi
    done
fi
export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-2}"

"$PYTHON" - <<'PYTHON_CODE'
import keras

backend = keras.backend.backend()
if backend == "tensorflow":
    import tensorflow as tf
    gpus = [device.name for device in tf.config.list_physical_devices("GPU")]
elif backend == "torch":
    import torch
    gpus = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
else:
    import jax
    gpus = [str(device) for device in jax.devices() if device.platform == "gpu"]
print(f"Keras backend: {backend}; GPU: {', '.join(gpus) if gpus else 'none, training on the CPU'}")
PYTHON_CODE

exec "$PYTHON" -m toonvision compare \
    --data-dir "$DATA_DIR" \
    --task binary \
    --configs baseline,optimized \
    --runs 200 \
    --epochs 25 \
    --image-size 600 200 \
    --ratio 0.6 0.2 0.2 \
    --seed 0 \
    --select test \
    --out "$OUT" \
    --resume \
    "$@"
