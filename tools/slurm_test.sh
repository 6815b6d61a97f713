#!/usr/bin/env bash
# Evaluation under Slurm, one task per GPU:
#   [GPUS=8] [GPUS_PER_NODE=8] [CPUS_PER_TASK=5] [SRUN_ARGS="..."] \
#   tools/slurm_test.sh PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]
# Every argument reaches test.py as given (a path or --cfg-options value may hold spaces).
set -e
if [ $# -lt 4 ]; then
    echo "usage: [GPUS=8] $0 PARTITION JOB_NAME CONFIG CHECKPOINT [test.py args...]" >&2
    exit 2
fi
source "$(dirname "$0")/slurm_launch.sh"
slurm_launch "$1" "$2" test.py "$3" "$4" --launcher=slurm "${@:5}"
