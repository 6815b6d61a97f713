#!/usr/bin/env bash
# Training under Slurm, one task per GPU:
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG [train.py args...]
# Every argument reaches train.py as given (a path or --cfg-options value may hold spaces).
set -e
if [ $# -lt 3 ]; then
    echo "usage: [GPUS=8] $0 PARTITION JOB_NAME CONFIG [train.py args...]" >&2
    exit 2
fi
source "$(dirname "$0")/slurm_launch.sh"
slurm_launch "$1" "$2" train.py "$3" --launcher=slurm "${@:4}"
