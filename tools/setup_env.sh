#!/usr/bin/env bash
# Creates the project-local virtual environment .venv and installs the pinned OpenMMLab stack
# into it, building mmcv 2.1.0 (with compiled ops) from source against the installed torch.
#
# Idempotent: the mmcv wheel is cached per (mmcv, torch, CPU/CUDA arch) under
# ${VITEXT_CACHE:-~/.cache/vitext}, uv caches every download, so a second run takes about a minute.
# On a machine where torch sees a CUDA GPU (and nvcc is on PATH) the same command builds mmcv's
# CUDA ops; VITEXT_MMCV_CUDA=0 forces a CPU-only build, VITEXT_MMCV_CUDA=1 forces CUDA.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VITEXT_VENV:-$ROOT/.venv}"
CACHE="${VITEXT_CACHE:-$HOME/.cache/vitext}"
BASE_PYTHON="${VITEXT_BASE_PYTHON:-python3}"
MMCV_VERSION=2.1.0
UV_VERSION=0.13.9

log() { printf '[setup_env] %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating $VENV"
  "$BASE_PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
# uv, not pip: pip here is configured with a local find-links folder holding a CPU-only torch
# wheel that the registry's torchvision cannot load against; uv resolves the registry build.
if ! "$VENV/bin/uv" --version 2>/dev/null | grep -q "$UV_VERSION"; then
  "$PY" -m pip install -q "uv==$UV_VERSION"
fi
uv_install() { "$VENV/bin/uv" pip install --python "$PY" "$@"; }

log "installing torch, timm and the OpenMMLab runtime (except mmcv)"
uv_install -r "$ROOT/requirements/runtime.txt" -r "$ROOT/requirements/tests.txt" wheel ninja
# without executorch's declared dependencies: see requirements/executorch.txt
uv_install --no-deps -r "$ROOT/requirements/executorch.txt"

read -r TORCH_VERSION CUDA_AVAILABLE CUDA_ARCH < <("$PY" - <<'PYEOF'
import torch
ok = torch.cuda.is_available()
arch = '%d.%d' % torch.cuda.get_device_capability(0) if ok else 'none'
print(torch.__version__, int(ok), arch)
PYEOF
)
WITH_CUDA="${VITEXT_MMCV_CUDA:-$CUDA_AVAILABLE}"
if [ "$WITH_CUDA" = 1 ]; then FLAVOUR="cuda${CUDA_ARCH}"; else FLAVOUR=cpu; fi
WHEELS="$CACHE/wheels/mmcv-$MMCV_VERSION-torch$TORCH_VERSION-$FLAVOUR"

if ! "$PY" -c "import mmcv, mmcv.ops; assert mmcv.__version__ == '$MMCV_VERSION'" 2>/dev/null \
   || { [ "$WITH_CUDA" = 1 ] && ! "$PY" -c "import torch, mmcv.ops as o; o.nms(torch.zeros(1,4).cuda(), torch.zeros(1).cuda(), 0.5)" 2>/dev/null; }; then
  if ! ls "$WHEELS"/mmcv-*.whl >/dev/null 2>&1; then
    log "building mmcv $MMCV_VERSION with ops ($FLAVOUR) -- about 10 minutes on 2 cores"
    mkdir -p "$WHEELS"
    export MMCV_WITH_OPS=1 MAX_JOBS="${MAX_JOBS:-$(nproc)}"
    if [ "$WITH_CUDA" = 1 ]; then export FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$CUDA_ARCH"; else export FORCE_CUDA=0; fi
    # No build isolation: the ops must be compiled against the torch installed above.
    "$PY" -m pip wheel --no-build-isolation --no-deps --no-cache-dir -w "$WHEELS.tmp" "mmcv==$MMCV_VERSION"
    mv "$WHEELS.tmp"/mmcv-*.whl "$WHEELS"/ && rm -rf "$WHEELS.tmp"
  fi
  log "installing cached mmcv wheel from $WHEELS"
  uv_install --reinstall-package mmcv "$WHEELS"/mmcv-*.whl -r "$ROOT/requirements/runtime.txt"
fi

log "installing vitext (editable)"
uv_install --no-build-isolation --no-deps -e "$ROOT"

"$PY" - <<'PYEOF'
import torch, torchvision, timm, mmcv, mmcv.ops, mmseg, mmseg.models, mmdet, mmdet.models
import mmpretrain, mmpretrain.models, vitext
print('[setup_env] ok: torch %s (cuda %s), torchvision %s, timm %s, mmcv %s (ops), mmseg %s, '
      'mmdet %s, mmpretrain %s, vitext %s' % (
          torch.__version__, torch.cuda.is_available(), torchvision.__version__, timm.__version__,
          mmcv.__version__, mmseg.__version__, mmdet.__version__, mmpretrain.__version__,
          vitext.__version__))
PYEOF
