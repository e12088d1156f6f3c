#!/usr/bin/env bash
# The article's job "extract new screenshots", with the toonvision CLI only.
#
# Crops every labelled object of the screenshots in SCREENSHOTS_DIR (labelImg Pascal VOC XML
# beside each image) into DATA_DIR/unsorted/<cog|toon|label>/<label>_<index>.png, then moves
# each fully extracted screenshot and its XML to DATA_DIR/raw/processed/. What stays behind in
# SCREENSHOTS_DIR is what needs attention: screenshots without XML, unreadable files, boxes
# that were skipped. Fix those and run the script again; nothing is extracted twice.
#
# Usage:
#   scripts/extract_screenshots.sh SCREENSHOTS_DIR [DATA_DIR]
# Arguments (defaults in brackets):
#   SCREENSHOTS_DIR  the folder labelImg saved to, searched recursively
#   DATA_DIR         the data folder [data]
# Environment:
#   DRAW        also write copies of the screenshots with their boxes drawn to this folder
#               [none]
#   TOONVISION  the command to run [toonvision, or .venv/bin/toonvision when present]
# Exit status: 0 when everything was extracted, 1 when something was skipped (listed in the
# summary), 2 on a usage error.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    usage
    exit 0
fi
if [[ $# -lt 1 || $# -gt 2 ]]; then
    usage >&2
    exit 2
fi

SCREENSHOTS_DIR=$1
DATA_DIR=${2:-data}
DEFAULT_TOONVISION=toonvision
if [[ -x "$(dirname "$0")/../.venv/bin/toonvision" ]]; then
    DEFAULT_TOONVISION="$(dirname "$0")/../.venv/bin/toonvision"
fi
TOONVISION=${TOONVISION:-$DEFAULT_TOONVISION}

options=(--data-dir "$DATA_DIR" --move)
if [[ -n ${DRAW:-} ]]; then
    options+=(--draw "$DRAW")
fi

echo "extracting $SCREENSHOTS_DIR into $DATA_DIR" >&2
"$TOONVISION" extract "$SCREENSHOTS_DIR" "${options[@]}"
