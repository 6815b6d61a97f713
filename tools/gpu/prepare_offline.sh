#!/usr/bin/env bash
# Run on a machine that reaches the package registry: fills DIR with everything
# tools/gpu/install_offline.sh needs to add vitext to an existing PyTorch environment offline.
#
#   tools/gpu/prepare_offline.sh DIR [--python-version 3.10] [--platform x86_64-manylinux_2_28]
#
# --python-version and --platform describe the TARGET (default: this machine's Python, x86-64
# Linux). DIR receives vitext's wheel (built from this checkout), mmcv 2.1.0's source distribution
# (built on the target against its torch), and wheels of requirements/offline.txt with all their
# dependencies, at the versions requirements/runtime.txt measured where it pins them. torch and
# torchvision are never bundled: the target keeps its own. DIR/requirements.txt names what
# install_offline.sh installs; DIR/pinned.txt lists every bundled version; DIR/install_offline.sh
# is a copy of the installer, so DIR alone goes to the target.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PY="${VITEXT_PYTHON:-python3}"
MMCV_VERSION="$(sed -n 's/^MMCV_VERSION=//p' "$ROOT/tools/setup_env.sh")"
usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-0}"; }

DIR=""
PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
PLATFORM=x86_64-manylinux_2_28
while [ $# -gt 0 ]; do
  case "$1" in
    --python-version) PYVER="$2"; shift 2 ;;
    --platform) PLATFORM="$2"; shift 2 ;;
    -h|--help) usage ;;
    -*) echo "prepare_offline.sh: unknown option $1" >&2; usage 2 ;;
    *) DIR="$1"; shift ;;
  esac
done
[ -n "$DIR" ] || usage 2
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
log() { printf '[prepare_offline] %s\n' "$*"; }

UV="${VITEXT_UV:-$(command -v uv || echo "$ROOT/.venv/bin/uv")}"
if [ ! -x "$UV" ]; then
  echo "prepare_offline.sh needs uv to resolve for another Python/platform: pip install uv" >&2
  exit 1
fi
# uv names a platform arch-first (x86_64-manylinux_2_28), pip's tags arch-last; pip takes only the
# tags it is given, so a manylinux_2_N target also lists the older glibc tags it runs.
ARCH="${PLATFORM%%-*}"
PIP_PLATFORMS=(--platform "${PLATFORM#*-}_$ARCH" --platform any)
if [[ "$PLATFORM" =~ manylinux_2_([0-9]+)$ ]]; then
  for ((minor = BASH_REMATCH[1] - 1; minor >= 5; minor--)); do
    PIP_PLATFORMS+=(--platform "manylinux_2_${minor}_$ARCH")
  done
  PIP_PLATFORMS+=(--platform "manylinux2014_$ARCH" --platform "manylinux2010_$ARCH" --platform "manylinux1_$ARCH")
fi
ABI="cp${PYVER/./}"

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
grep -v -E '^(torch|torchvision)([=<>!~ ;]|$)' "$ROOT/requirements/runtime.txt" > "$TMP/measured.txt"
# An override whose marker never holds drops torch and torchvision (timm's dependencies) from
# the resolution, and with them their CUDA wheels.
printf 'torch; sys_platform == "never"\ntorchvision; sys_platform == "never"\n' > "$TMP/keep.txt"

log "resolving requirements/offline.txt for Python $PYVER on $PLATFORM"
"$UV" pip compile -q --no-header --no-annotate "$ROOT/requirements/offline.txt" \
  -c "$TMP/measured.txt" --override "$TMP/keep.txt" \
  --python-version "$PYVER" --python-platform "$PLATFORM" -o "$DIR/pinned.txt"

log "downloading $(grep -c '==' "$DIR/pinned.txt") wheels into $DIR"
"$PY" -m pip download -q --no-deps --only-binary :all: --python-version "$PYVER" \
  --implementation cp --abi "$ABI" --abi abi3 --abi none "${PIP_PLATFORMS[@]}" \
  -d "$DIR" -r "$DIR/pinned.txt"

log "downloading mmcv $MMCV_VERSION (source distribution)"
"$PY" -m pip download -q --no-deps --no-binary :all: -d "$DIR" "mmcv==$MMCV_VERSION"

log "building vitext's wheel from $ROOT"
"$PY" -m pip wheel -q --no-deps -w "$DIR" "$ROOT"

# What install_offline.sh installs: requirements/offline.txt, at runtime.txt's versions where it
# pins them (the rest as ranges, so that what the target has and satisfies them stays).
sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$ROOT/requirements/offline.txt" | while read -r line; do
  pin="$(grep -i -E "^${line%%[ <>=!~;]*}==" "$TMP/measured.txt" || true)"
  echo "${pin:-$line}"
done > "$DIR/requirements.txt"
cp "$ROOT/tools/gpu/install_offline.sh" "$DIR/"
log "done: $(ls "$DIR" | wc -l) files; copy $DIR to the target and run: bash $(basename "$DIR")/install_offline.sh"
