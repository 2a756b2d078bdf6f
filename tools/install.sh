#!/usr/bin/env bash
# Install vim_backbone and its OpenMMLab stack into a virtual environment (.venv, or $VENV).
#
#   bash tools/install.sh            # runtime stack + vim_backbone (editable) into .venv
#   bash tools/install.sh --dev      # + test dependencies
#   VENV=/path/to/env bash tools/install.sh   # another (new or existing) environment
#
# Why a script and not only `pip install -e .`: the registry has mmcv 2.1.0 only as an sdist whose
# setup.py (a) imports pkg_resources (gone in setuptools 82), (b) asks for -std=c++17 which torch 2.14
# headers refuse. We build it here, CPU ops included, with those two things fixed. Set FORCE_CUDA=1
# (and TORCH_CUDA_ARCH_LIST) to build its CUDA ops instead; tools/install_cuda_ops.sh does that.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  ${PYTHON:-python3} -m venv "$VENV"
fi
PY="$VENV/bin/python"
# torch's CUDA build alone is 5.5 GB in the environment; a full disk shows up later as pip's bare "[Errno 28] No
# space left on device", so say it first
free_kb=$(df -Pk "$VENV" | awk 'NR == 2 {print $4}')
if [ -n "$free_kb" ] && [ "$free_kb" -lt $((10 * 1024 * 1024)) ]; then
  echo "[install] warning: $((free_kb / 1024)) MB free where $VENV lies; a new environment takes 6.1 GB, more while it installs" >&2
fi
$PY -m pip install -q --upgrade "pip>=24"
EXTRAS=""
for arg in "$@"; do
  case "$arg" in
    --dev) EXTRAS="[dev]" ;;
    *) echo "unknown argument $arg (valid: --dev)" >&2; exit 2 ;;
  esac
done

TORCH_SPEC=${TORCH_SPEC:-"torch==2.14.1 torchvision==0.29.1"}
MMCV_VERSION=2.1.0
$PY -m pip install -q $TORCH_SPEC "setuptools>=77.0.3,<82" wheel ninja

if $PY -c "import mmcv, mmcv.ops, sys; sys.exit(mmcv.__version__ != '$MMCV_VERSION')" 2>/dev/null; then
  echo "[install] mmcv $MMCV_VERSION with ops already present"
else
  work=$(mktemp -d)
  echo "[install] building mmcv $MMCV_VERSION (ops) from sdist in $work"
  $PY -m pip download -q --no-deps --no-binary :all: --no-build-isolation "mmcv==$MMCV_VERSION" -d "$work"
  tar -xzf "$work"/mmcv-$MMCV_VERSION.tar.gz -C "$work"
  sed -i 's/-std=c++17/-std=c++20/g' "$work/mmcv-$MMCV_VERSION/setup.py"
  # -g0 -O3: debug info makes the build 2x slower and the wheel 25x larger.
  MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} CFLAGS="-DNDEBUG -O3 -fwrapv -Wall -g0" \
    $PY -m pip install -q --no-build-isolation "$work/mmcv-$MMCV_VERSION"
  rm -rf "$work"
fi

$PY -m pip install -q --no-build-isolation -e ".${EXTRAS}"
echo "[install] done in $(( $(date +%s) - start )) s"
