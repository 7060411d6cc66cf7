#!/usr/bin/env bash
# The CamVid recipe of the bundled model, resumable: rerun the same command after an
# interruption and each stage continues from its last.pth (checkpointed every epoch).
#
#   bash tools/train_camvid_recipe.sh select   # train -> val: the figures the recipe is chosen on
#   bash tools/train_camvid_recipe.sh final    # train+val, the same fixed epoch count: the shipped model
#
# What each lever buys on val, one at a time on the previous bundled recipe's 36-epoch schedule
# (EfficientNet-Lite0, cross-entropy with ENet weights, scale 0.75-1.75, no EMA: 69.8 at epoch 36):
#
#   bash tools/train_camvid_recipe.sh lever-lite1   # + EfficientNet-Lite1 encoder
#   bash tools/train_camvid_recipe.sh lever-ohem    # + OHEM cross-entropy
#   bash tools/train_camvid_recipe.sh lever-recipe  # + scale 0.5-2.0 and EMA 0.999: the recipe, 36 epochs
#
# The long schedule's share is select (150 epochs) against lever-recipe (36); EMA's is
# lever-recipe's EMA weights against its raw ones (`rtseg eval`, tools/eval_raw_weights.py).
#
# RUNS (default runs/) holds the stages' folders; DATA (default ../shared/data/camvid) the data;
# THREADS (default 1) torch threads per stage, so two stages can run side by side on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE="${1:?usage: train_camvid_recipe.sh select|final}"
RUNS="${RUNS:-runs}"
DATA="${DATA:-../shared/data/camvid}"
RECIPE=(--encoder efficientnet_lite1 --loss ohem --scale 0.5,2.0 --ema-decay 0.999)
case "$STAGE" in
    select) SPLIT=train; EPOCHS=150; VAL_EVERY=5; NAME=camvid_lite1_fpn_select; LEVERS=("${RECIPE[@]}") ;;
    final) SPLIT=train+val; EPOCHS=150; VAL_EVERY=150; NAME=camvid_lite1_fpn_final; LEVERS=("${RECIPE[@]}") ;;  # trains on val: one figure, marked seen
    lever-lite1) SPLIT=train; EPOCHS=36; VAL_EVERY=6; NAME=camvid_lever_lite1; LEVERS=(--encoder efficientnet_lite1) ;;
    lever-ohem) SPLIT=train; EPOCHS=36; VAL_EVERY=6; NAME=camvid_lever_ohem; LEVERS=(--encoder efficientnet_lite1 --loss ohem) ;;
    lever-recipe) SPLIT=train; EPOCHS=36; VAL_EVERY=6; NAME=camvid_lever_recipe; LEVERS=("${RECIPE[@]}") ;;
    *) echo "train_camvid_recipe.sh: stage must be select, final or lever-lite1|ohem|recipe, got $STAGE" >&2; exit 1 ;;
esac
# Defaults of everything not named: cross-entropy, ENet class weights, scale 0.75-1.75, no EMA, Lite0.
exec python -m rtseg train --dataset camvid --data-root "$DATA" --train-split "$SPLIT" \
    --arch fpn_lite --encoder efficientnet_lite0 --loss ce --scale 0.75,1.75 --ema-decay 0 \
    --epochs "$EPOCHS" --batch-size 8 --lr 1.5e-3 --class-weights enet --crop 288x384 \
    "${LEVERS[@]}" --val-every "$VAL_EVERY" --threads "${THREADS:-1}" --seed 0 \
    --out-dir "$RUNS/$NAME"
