#!/usr/bin/env bash
# The Pokemon type challenge, end to end, with the toonvision CLI only.
#
#   1. explore     look at the data: counts per type (table, pie, bars), sizes, colour modes,
#                  duplicates, sample images per type
#   2. preprocess  remove the background and centre each Pokemon, resized to 64x64: a new
#                  labelled set (labels.csv + images/) beside the raw one
#   3. compare     the deck's MLP and the article's CNN (baseline) on the raw images and on
#                  the preprocessed ones; seed r draws the same split of the same Pokemon in
#                  both comparisons, because the preprocessed labels.csv keeps the row order
#   4. ablate      the deck's MLP study on the preprocessed images
#
# Usage:
#   scripts/pokemon_challenge.sh [OUT]
# Environment (defaults in brackets):
#   POKEMON_CSV     the labels   [../shared/data/pokemon_types/pokemon.csv]
#   POKEMON_IMAGES  the images   [../shared/data/pokemon_types/images]
#   ID_COLUMN, LABEL_COLUMN      [Name, Type1]; the challenge's own train_labels.csv is
#                                 Id,label: set ID_COLUMN=Id LABEL_COLUMN=label
#   KEEP            types kept   [the challenge's 9: Water,Normal,...,Fighting]
#   RUNS            runs (splits) per comparison [3]
#   EPOCHS          most epochs per run [40]; early stopping with PATIENCE [5] stops sooner
#   SEEDS           seeds of the ablation [3]; ABLATE=0 skips it
#   BALANCE         none | undersample | oversample, training splits only [none]
# OUT [runs/pokemon_challenge] must not exist yet or be empty.
# Exit status: 0 when every step ran, 2 on a usage error or a non-empty OUT; a failing step
# stops the script with its own status.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
if [[ ${1:-} == -h || ${1:-} == --help ]]; then
    usage
    exit 0
fi
if [[ $# -gt 1 || ${1:-} == -* ]]; then
    usage >&2
    exit 2
fi

OUT=${1:-runs/pokemon_challenge}
POKEMON_CSV=${POKEMON_CSV:-../shared/data/pokemon_types/pokemon.csv}
POKEMON_IMAGES=${POKEMON_IMAGES:-../shared/data/pokemon_types/images}
ID_COLUMN=${ID_COLUMN:-Name}
LABEL_COLUMN=${LABEL_COLUMN:-Type1}
KEEP=${KEEP:-Water,Normal,Grass,Bug,Fire,Rock,Poison,Ground,Fighting}
RUNS=${RUNS:-3}
EPOCHS=${EPOCHS:-40}
PATIENCE=${PATIENCE:-5}
SEEDS=${SEEDS:-3}
ABLATE=${ABLATE:-1}
BALANCE=${BALANCE:-none}
TOONVISION=${TOONVISION:-toonvision}

if [ -e "$OUT" ] && [ -n "$(ls -A "$OUT")" ]; then
    echo "pokemon_challenge.sh: $OUT is not empty; give a new folder" >&2
    exit 2
fi
mkdir -p "$OUT"

raw=(--labels "$POKEMON_CSV" --images "$POKEMON_IMAGES"
     --id-column "$ID_COLUMN" --label-column "$LABEL_COLUMN" --keep "$KEEP")
processed=(--labels "$OUT/pokemon_64/labels.csv" --images "$OUT/pokemon_64/images")
training=(--task label --image-size 64 64 --configs mlp,baseline --runs "$RUNS"
          --epochs "$EPOCHS" --early-stopping "$PATIENCE" --balance "$BALANCE" --select val_loss)

echo "== 1. explore"
"$TOONVISION" explore "${raw[@]}" --out "$OUT/explore"

echo "== 2. preprocess (background removal + centering, 64x64)"
"$TOONVISION" preprocess "${raw[@]}" --size 64 --out "$OUT/pokemon_64"

echo "== 3a. compare MLP and CNN on the raw images"
"$TOONVISION" compare "${raw[@]}" "${training[@]}" --out "$OUT/compare_raw"

echo "== 3b. compare MLP and CNN on the preprocessed images (same splits)"
"$TOONVISION" compare "${processed[@]}" "${training[@]}" --out "$OUT/compare_preprocessed"

if [ "$ABLATE" != 0 ]; then
    echo "== 4. the MLP study on the preprocessed images"
    "$TOONVISION" ablate "${processed[@]}" --seeds "$SEEDS" --epochs "$EPOCHS" \
        --patience "$PATIENCE" --balance "$BALANCE" --out "$OUT/ablation"
fi

echo "== done: $OUT"
echo "   explore/               counts, pie and bar charts, samples, summary.json"
echo "   pokemon_64/            the preprocessed set + preprocess_steps.png"
echo "   compare_raw/           MLP vs CNN on raw images: summary.csv, runs.jsonl, figures"
echo "   compare_preprocessed/  the same on preprocessed images"
[ "$ABLATE" != 0 ] && echo "   ablation/              ablation.csv, ablation_runs.csv"
echo "   tracking.jsonl in each training folder; mlruns/ too when MLflow is installed"
