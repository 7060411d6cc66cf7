#!/usr/bin/env bash
# The CamVid recipe of the bundled model, resumable: rerun the same command after an
# interruption and each stage continues from its last.pth (checkpointed every epoch).
#
#   bash tools/train_camvid_recipe.sh select   # train -> val: the figures the recipe is chosen on
#   bash tools/train_camvid_recipe.sh final    # train+val, the same fixed epoch count: the shipped model
#
# RUNS (default runs/) holds the stages' folders; DATA (default ../shared/data/camvid) the data;
# THREADS (default 1) torch threads per stage, so the two stages can run side by side on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE="${1:?usage: train_camvid_recipe.sh select|final}"
RUNS="${RUNS:-runs}"
DATA="${DATA:-../shared/data/camvid}"
case "$STAGE" in
    select) SPLIT=train; VAL_EVERY=5 ;;
    final) SPLIT=train+val; VAL_EVERY=150 ;;  # it trains on val: one figure at the end, marked seen
    *) echo "train_camvid_recipe.sh: stage must be select or final, got $STAGE" >&2; exit 1 ;;
esac
exec python -m rtseg train --dataset camvid --data-root "$DATA" --train-split "$SPLIT" \
    --arch fpn_lite --encoder efficientnet_lite1 --epochs 150 --batch-size 8 --lr 1.5e-3 \
    --loss ohem --class-weights enet --scale 0.5,2.0 --crop 288x384 --ema-decay 0.999 \
    --val-every "$VAL_EVERY" --threads "${THREADS:-1}" --seed 0 --out-dir "$RUNS/camvid_lite1_fpn_$STAGE"
