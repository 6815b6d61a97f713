#!/usr/bin/env bash
# Adds vitext and its OpenMMLab stack to an EXISTING PyTorch environment (e.g. a GPU cluster's
# CUDA PyTorch), offline, from a folder made by tools/gpu/prepare_offline.sh on a connected machine.
#
#   bash DIR/install_offline.sh [DIR] [--python PYTHON] [--rebuild-mmcv] [--dry-run]
#
# DIR defaults to this script's folder; PYTHON to `python` on PATH (the environment's own).
# Nothing comes from a registry (pip --no-index --find-links DIR), and the environment's torch and
# torchvision are pinned to their installed versions, so they are never replaced. mmcv 2.1.0 is
# built from its source distribution without build isolation, against that torch, with its
# compiled ops (mmseg needs them even for segmentation): CUDA ops when torch sees a GPU and nvcc is
# found (VITEXT_MMCV_CUDA=0/1 overrides; CUDA ops take a while, CPU ops a few minutes on 16
# cores), else CPU ops. A prebuilt mmcv-2.1.0-*.whl in DIR is used instead when present (it must
# have been built against this torch). An environment holding the onedl-* fork is refused: the
# bundle is the upstream set, which would be installed beside the fork's packages of the same
# import names. --dry-run prints the pip commands without running them.
set -euo pipefail

DIR=""
PY="$(command -v python || command -v python3 || true)"
DRY_RUN=0
REBUILD_MMCV=0
MMCV_VERSION=2.1.0
usage() { sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --python) PY="$2"; shift 2 ;;
    --dry-run) DRY_RUN=1; shift ;;
    --rebuild-mmcv) REBUILD_MMCV=1; shift ;;
    -h|--help) usage ;;
    -*) echo "install_offline.sh: unknown option $1" >&2; usage 2 ;;
    *) DIR="$1"; shift ;;
  esac
done
DIR="$(cd "${DIR:-$(dirname "${BASH_SOURCE[0]}")}" && pwd)"
log() { printf '[install_offline] %s\n' "$*"; }
die() { printf 'install_offline.sh: %s\n' "$*" >&2; exit 1; }
run() {
  if [ "$DRY_RUN" = 1 ]; then printf '+'; printf ' %q' "$@"; printf '\n'; else "$@"; fi
}

[ -n "$PY" ] && [ -x "$(command -v "$PY")" ] || die "no python found; pass --python PYTHON"
[ -f "$DIR/requirements.txt" ] || die "$DIR/requirements.txt missing: DIR must be a folder made by tools/gpu/prepare_offline.sh"
VITEXT_WHEEL="$(ls "$DIR"/vitext-*.whl 2>/dev/null | tail -1)"
[ -n "$VITEXT_WHEEL" ] || die "no vitext-*.whl in $DIR"
MMCV_WHEEL="$(ls "$DIR"/mmcv-"$MMCV_VERSION"-*.whl 2>/dev/null | tail -1 || true)"
MMCV_SDIST="$DIR/mmcv-$MMCV_VERSION.tar.gz"
[ -n "$MMCV_WHEEL" ] || [ -f "$MMCV_SDIST" ] || die "neither mmcv-$MMCV_VERSION.tar.gz nor an mmcv-$MMCV_VERSION wheel in $DIR"

# What the environment has: torch (required), torchvision (optional), whether torch sees a GPU.
PROBE="$("$PY" - <<'PYEOF'
import importlib.metadata, importlib.util, os, shutil
onedl = sorted('%s==%s' % (d.metadata['Name'], d.version) for d in importlib.metadata.distributions()
               if (d.metadata['Name'] or '').lower().startswith('onedl-'))
try:
    import torch
except ImportError:
    print('none - 0 0 - -')
    raise SystemExit
tv = importlib.util.find_spec('torchvision') and __import__('torchvision').__version__
gpu = torch.cuda.is_available()
archs = sorted({'%d.%d' % torch.cuda.get_device_capability(i)
                for i in range(torch.cuda.device_count())}) if gpu else []
# where torch's extension builder looks for the CUDA toolkit (it imports setuptools, which the
# environment may not have yet)
nvcc = (os.environ.get('CUDA_HOME') or os.environ.get('CUDA_PATH') or shutil.which('nvcc')
        or os.path.exists('/usr/local/cuda/bin/nvcc'))
print(torch.__version__, tv or '-', int(gpu), int(bool(nvcc)), ';'.join(archs) or '-',
      ','.join(onedl) or '-')
PYEOF
)"
read -r TORCH_VERSION TORCHVISION_VERSION HAS_GPU HAS_NVCC CUDA_ARCHS ONEDL <<< "$PROBE"
[ "$TORCH_VERSION" != none ] || die "$PY has no torch: this script adds vitext to an environment that already has PyTorch"
[ "$ONEDL" = - ] || die "$PY has the onedl-* fork ($ONEDL): this bundle holds the upstream OpenMMLab set and would install it beside the fork; install vitext there with pip install 'vitext[onedl-det]' instead (README: The maintained onedl-* fork)"
log "python $PY: torch $TORCH_VERSION, torchvision $TORCHVISION_VERSION, GPU $HAS_GPU, nvcc $HAS_NVCC"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
CONSTRAINTS="$TMP/keep-torch.txt"
echo "torch==$TORCH_VERSION" > "$CONSTRAINTS"
[ "$TORCHVISION_VERSION" = - ] || echo "torchvision==$TORCHVISION_VERSION" >> "$CONSTRAINTS"
log "constraints: $(paste -sd' ' "$CONSTRAINTS")"
PIP=("$PY" -m pip install --no-index --find-links "$DIR" -c "$CONSTRAINTS")

REQUIREMENTS="$DIR/requirements.txt"
if [ "$TORCHVISION_VERSION" = - ]; then
  log "no torchvision here: leaving out timm (it needs torchvision; vitext itself does not)"
  REQUIREMENTS="$TMP/requirements.txt"
  grep -v -i '^timm' "$DIR/requirements.txt" > "$REQUIREMENTS"
fi
log "installing mmengine, mmsegmentation, mmdet, timm and their dependencies from $DIR"
run "${PIP[@]}" -r "$REQUIREMENTS"

WITH_CUDA="${VITEXT_MMCV_CUDA:-$HAS_GPU}"
if [ "$WITH_CUDA" = 1 ] && [ "$HAS_NVCC" = 0 ]; then
  die "torch sees a GPU but no CUDA toolkit (nvcc) was found to build mmcv's CUDA ops: set CUDA_HOME, or VITEXT_MMCV_CUDA=0 for CPU ops only"
fi
if [ "$REBUILD_MMCV" = 0 ] && "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null \
   && { [ "$WITH_CUDA" = 0 ] || "$PY" -c "import torch, mmcv.ops as o; o.nms(torch.zeros(1, 4).cuda(), torch.zeros(1).cuda(), 0.5)" 2>/dev/null; }; then
  log "mmcv $MMCV_VERSION with ops already works here"
elif [ -n "$MMCV_WHEEL" ]; then
  log "installing the prebuilt $(basename "$MMCV_WHEEL")"
  run "${PIP[@]}" --force-reinstall --no-deps "$MMCV_WHEEL"
else
  if [ "$WITH_CUDA" = 1 ]; then
    log "building mmcv $MMCV_VERSION with CUDA ops for compute capability ${CUDA_ARCHS//;/, } against torch $TORCH_VERSION"
    BUILD_ENV=(FORCE_CUDA=1 "TORCH_CUDA_ARCH_LIST=${VITEXT_CUDA_ARCHS:-$CUDA_ARCHS}")
  else
    log "building mmcv $MMCV_VERSION with CPU ops against torch $TORCH_VERSION"
    BUILD_ENV=(FORCE_CUDA=0)
  fi
  # No build isolation: the ops compile against the torch installed here, not a downloaded one.
  run env MMCV_WITH_OPS=1 "MAX_JOBS=${MAX_JOBS:-$(nproc)}" "${BUILD_ENV[@]}" \
    "${PIP[@]}" --force-reinstall --no-deps --no-build-isolation --no-cache-dir "$MMCV_SDIST"
fi

log "installing $(basename "$VITEXT_WHEEL")"
run "${PIP[@]}" "${VITEXT_WHEEL}[det]"

[ "$DRY_RUN" = 1 ] && exit 0
"$PY" - "$TORCH_VERSION" "$WITH_CUDA" <<'PYEOF'
import sys
import torch, mmcv, mmcv.ops, mmseg, mmseg.models, mmdet, mmdet.models, vitext
assert torch.__version__ == sys.argv[1], f'torch changed: {sys.argv[1]} -> {torch.__version__}'
if sys.argv[2] == '1':
    mmcv.ops.nms(torch.zeros(1, 4).cuda(), torch.zeros(1).cuda(), 0.5)
print('[install_offline] ok: torch %s (cuda %s), mmcv %s (ops%s), mmseg %s, mmdet %s, vitext %s'
      % (torch.__version__, torch.cuda.is_available(), mmcv.__version__,
         ', CUDA' if sys.argv[2] == '1' else '', mmseg.__version__, mmdet.__version__,
         vitext.__version__))
PYEOF
