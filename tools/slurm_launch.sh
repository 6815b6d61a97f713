# Sourced by tools/slurm_train.sh and tools/slurm_test.sh (not run on its own).
# slurm_launch PARTITION JOB_NAME SCRIPT [SCRIPT args...] starts one task per GPU with srun.
# Environment: GPUS (tasks in all, default 8), GPUS_PER_NODE (default 8), CPUS_PER_TASK
# (default 5), SRUN_ARGS (further srun options, split into words at whitespace), PYTHON.

# Stops with one message unless the variable named $1 holds a positive whole number ($2).
require_positive() {
    if ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then
        echo "$(basename "$0"): $1 must be a positive whole number, got '$2'" >&2
        exit 2
    fi
}

slurm_launch() {
    local partition=$1 job_name=$2 script=$3
    shift 3
    local gpus=${GPUS:-8} gpus_per_node=${GPUS_PER_NODE:-8} cpus_per_task=${CPUS_PER_TASK:-5}
    require_positive GPUS "$gpus"
    require_positive GPUS_PER_NODE "$gpus_per_node"
    require_positive CPUS_PER_TASK "$cpus_per_task"
    # A job smaller than a node asks only for the GPUs (and tasks) it uses there.
    local per_node=$(( gpus < gpus_per_node ? gpus : gpus_per_node ))
    local srun_args=()
    read -r -a srun_args <<< "${SRUN_ARGS:-}"
    local tools python
    tools="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
    # Interpreter: $PYTHON if set, else the project's .venv (tools/setup_env.sh), else python.
    python=${PYTHON:-python}
    [ -z "${PYTHON:-}" ] && [ -x "$tools/../.venv/bin/python" ] && python="$tools/../.venv/bin/python"
    set -x
    PYTHONPATH="$tools/..${PYTHONPATH:+:$PYTHONPATH}" \
    srun -p "$partition" \
        --job-name="$job_name" \
        --gres="gpu:$per_node" \
        --ntasks="$gpus" \
        --ntasks-per-node="$per_node" \
        --cpus-per-task="$cpus_per_task" \
        --kill-on-bad-exit=1 \
        "${srun_args[@]}" \
        "$python" -u "$tools/$script" "$@"
}
