#!/usr/bin/env bash
# README's first command: set up .venv, make the synthetic ADE20K-format set, then train and
# evaluate the four CPU demo UperNets under one recipe (120 iterations of batch 8 each at 128x128): the
# mmseg ResNet-18 baseline and vitext's Slide-Swin, AFT-conv and CB-ViT minis. Ends with the
# comparison table (params, FLOPs, s/iter, mIoU, mAcc) and a plot of the loss / mIoU curves.
# Extra arguments go to tools/demo_compare.py (e.g. --cfg-options train_cfg.max_iters=100).
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
PY=.venv/bin/python
WORK=${WORK_DIR:-work_dirs/demo}
$PY tools/make_synthetic_data.py --out data/synthetic --which ade
$PY tools/demo_compare.py --work-dir "$WORK" --val-interval 40 --show-dir vis "$@"
echo "visualisations:  $WORK/<model>/vis/vis_data/vis_image/ (validation images painted with predictions)"
