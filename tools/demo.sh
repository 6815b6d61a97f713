#!/usr/bin/env bash
# README's first command: set up .venv, make the synthetic ADE20K-format set, train the demo
# UperNet on it (300 iterations, ~5 min on 2 CPU cores), evaluate the checkpoint, print mIoU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
PY=.venv/bin/python
CONFIG=configs/demo/upernet_r18-mini_4xb8-300it_synthetic-ade20k-128x128.py
WORK=${WORK_DIR:-work_dirs/demo}
$PY tools/make_synthetic_data.py --out data/synthetic --which ade
$PY tools/train.py "$CONFIG" --work-dir "$WORK"
CKPT="$WORK/$(cat "$WORK/last_checkpoint" | xargs basename)"
$PY tools/test.py "$CONFIG" "$CKPT" --work-dir "$WORK" --show-dir vis | tail -n 2
echo "checkpoint:      $CKPT"
echo "logs:            $(ls -d "$WORK"/2*/ | sort | tail -n 2 | tr '\n' ' ')(training, test)"
echo "visualisations:  $WORK/vis/vis_data/vis_image/ (validation images painted with predictions)"
