#!/usr/bin/env bash
# Build the CUDA kernels Vim uses, for THIS machine's GPU architecture only, from source archives.
#
#   bash tools/install_cuda_ops.sh                         # mamba-ssm, causal-conv1d, mmcv ops
#   bash tools/install_cuda_ops.sh --only mamba,conv       # just the scan / conv kernels
#   bash tools/install_cuda_ops.sh --sdist-dir /data/sdist # offline: archives downloaded beforehand
#
# Pins: mamba-ssm==2.3.2.post1, causal-conv1d==1.7.0, mmcv==2.1.0 (with CUDA ops).
#
# Why a script: upstream setup.py files hard-code ~9 `-gencode` targets (sm_75 ... sm_121), so a
# source build takes 20-40 min; for the one arch that `torch.cuda.get_device_capability()` reports it
# takes minutes. Measured on an H100 (sm_90, 16 cores, MAX_JOBS=16): mamba-ssm 128 s, causal-conv1d
# 339 s, mmcv 271 s, one after another. The default builds causal-conv1d alongside the other two, so
# expect roughly max(339, 128 + 271) s plus contention (parallel wall time not measured yet).
# Also: mamba-ssm / causal-conv1d otherwise try to download a prebuilt wheel from GitHub (fails with no
# network, and needs a wheel matching torch exactly), so *_FORCE_BUILD=TRUE; mamba-ssm is installed with
# --no-deps because its requirements pull transformers 5.x (this project pins transformers==4.51.3) and
# tilelang/quack-kernels, none of which the selective scan needs; mmcv 2.1.0's setup.py imports
# pkg_resources (setuptools < 82) and asks for -std=c++17, which recent torch headers refuse.
#
# Options:
#   --sdist-dir DIR   where the .tar.gz archives are (default .sdist/); missing ones are downloaded
#                     with pip when online (`bash tools/prepare_device_wheels.sh` fetches them all).
#   --only LIST       comma list of mamba,conv,mmcv (default all three).
#   --arch X.Y        compute capability to build for (default: the visible GPU's, e.g. 9.0).
#   --jobs N          parallel compile jobs per build (default $(nproc)).
#   --sequential      build one after another (default: causal-conv1d builds in the background,
#                     its single big .cu file leaves most cores idle).
#   --wheel-dir DIR   keep the built wheels there (default build/cuda_ops/wheels-sm<arch>); a wheel
#                     already there for the same arch and torch is reused instead of rebuilt.
#   --force           rebuild and reinstall even when a working install is found.
#   --no-install      only build the wheels into --wheel-dir (e.g. to install them on another machine
#                     with the same GPU arch, torch and Python: pip install --no-deps DIR/*.whl).
# Environment: PYTHON (default python3), KEEP_BUILD=1 keeps the unpacked build trees.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}

MAMBA_VERSION=2.3.2.post1
CONV_VERSION=1.7.0
MMCV_VERSION=2.1.0

SDIST_DIR=.sdist
ONLY="mamba,conv,mmcv"
ARCH=""
JOBS=$(nproc)
PARALLEL=1
WHEEL_DIR=""
FORCE=0
INSTALL=1
usage() { sed -n '2,34p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case "$1" in
    --sdist-dir) SDIST_DIR=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --arch) ARCH=$2; shift 2 ;;
    --jobs) JOBS=$2; shift 2 ;;
    --sequential) PARALLEL=0; shift ;;
    --wheel-dir) WHEEL_DIR=$2; shift 2 ;;
    --force) FORCE=1; shift ;;
    --no-install) INSTALL=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "unknown argument $1 (valid: --sdist-dir DIR --only mamba,conv,mmcv --arch X.Y --jobs N --sequential --wheel-dir DIR --force --no-install)" >&2; exit 2 ;;
  esac
done
for part in ${ONLY//,/ }; do
  case "$part" in mamba|conv|mmcv) ;; *) echo "--only: $part not in mamba,conv,mmcv" >&2; exit 2 ;; esac
done
want() { [[ ",$ONLY," == *",$1,"* ]]; }
log() { echo "[install_cuda_ops] $*"; }

# ------------------------------------------------------------------------------------------ environment
if [ -z "$ARCH" ]; then
  ARCH=$($PY -c 'import torch; c = torch.cuda.get_device_capability() if torch.cuda.is_available() else None; print("" if c is None else f"{c[0]}.{c[1]}")')
  if [ -z "$ARCH" ]; then
    echo "no CUDA GPU visible to $PY (torch.cuda.is_available() is False): pass --arch X.Y (e.g. --arch 9.0 for H100/H200) to build for a GPU that is not here" >&2
    exit 1
  fi
fi
if ! [[ "$ARCH" =~ ^[0-9]+\.[0-9]+a?$ ]]; then
  echo "--arch $ARCH: expected a compute capability like 8.0, 8.6, 9.0 or 9.0a" >&2; exit 2
fi
SM=${ARCH/./}
command -v nvcc >/dev/null || [ -n "${CUDA_HOME:-}" ] || { echo "nvcc not found and CUDA_HOME unset: install the CUDA toolkit matching torch.version.cuda" >&2; exit 1; }
# torch >= 2.14 builds extensions as C++20 and its headers refuse C++17; older torch is happy with 17.
CXX_STD=$($PY -c 'import inspect, torch.utils.cpp_extension as c; print(20 if "-std=c++20" in inspect.getsource(c) else 17)')
TORCH_TAG=$($PY -c 'import torch; print(torch.__version__.split("+")[0] + "-cu" + str(torch.version.cuda))')
WHEEL_DIR=${WHEEL_DIR:-build/cuda_ops/wheels-sm${SM}-torch${TORCH_TAG}}
mkdir -p "$WHEEL_DIR" build/cuda_ops
WHEEL_DIR=$(cd "$WHEEL_DIR" && pwd)
SDIST_DIR=$(mkdir -p "$SDIST_DIR" && cd "$SDIST_DIR" && pwd)
LOG_DIR=$ROOT/build/cuda_ops/logs
mkdir -p "$LOG_DIR"
log "python $($PY -c 'import sys; print(sys.version.split()[0])'), torch $TORCH_TAG, nvcc $(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p'), arch sm_$SM, C++$CXX_STD, $JOBS jobs, sdists in $SDIST_DIR"

# Find (or download) the sdist of $1==$2; prints its path.
sdist_path() {
  local name=$1 version=$2 norm=${1//-/_} f
  for f in "$SDIST_DIR/$norm-$version.tar.gz" "$SDIST_DIR/$name-$version.tar.gz"; do
    [ -f "$f" ] && { echo "$f"; return 0; }
  done
  log "$name-$version.tar.gz not in $SDIST_DIR: downloading it with pip" >&2
  if ! MAMBA_SKIP_CUDA_BUILD=TRUE CAUSAL_CONV1D_SKIP_CUDA_BUILD=TRUE \
      $PY -m pip download -q --no-deps --no-binary :all: --no-build-isolation "$name==$version" -d "$SDIST_DIR" >&2; then
    echo "could not download $name==$version (offline?). Put $norm-$version.tar.gz in $SDIST_DIR (bash tools/prepare_device_wheels.sh fetches it) or pass --sdist-dir" >&2
    return 1
  fi
  for f in "$SDIST_DIR/$norm-$version.tar.gz" "$SDIST_DIR/$name-$version.tar.gz"; do
    [ -f "$f" ] && { echo "$f"; return 0; }
  done
  echo "pip saved no $name-$version.tar.gz in $SDIST_DIR" >&2; return 1
}

# Replace every hard-coded `-gencode arch=compute_XX,code=sm_XX` pair of a mamba/causal-conv1d setup.py
# by the one arch; fail loudly when the file no longer looks like what this script was written for.
patch_gencode() {
  $PY - "$1" "$SM" <<'EOF'
import re, sys
path, sm = sys.argv[1], sys.argv[2]
text = open(path).read()
pair = re.compile(r'(\n[ \t]*)cc_flag\.append\("-gencode"\)[ \t]*\n[ \t]*cc_flag\.append\("arch=compute_\d+a?,code=sm_\d+a?"\)')
found = len(pair.findall(text))
if found == 0:
    sys.exit(f"{path}: no hard-coded -gencode pairs found; the setup.py changed, update tools/install_cuda_ops.sh")
first = [True]
def repl(m):
    if first[0]:
        first[0] = False
        return f'{m.group(1)}cc_flag += ["-gencode", "arch=compute_{sm},code=sm_{sm}"]  # patched: this GPU only'
    return f"{m.group(1)}pass  # patched: arch dropped"
text = pair.sub(repl, text)
compile(text, path, "exec")
open(path, "w").write(text)
print(f"[install_cuda_ops] {path}: {found} -gencode targets -> sm_{sm}")
EOF
}

cached_wheel() {  # $1 = wheel name prefix (e.g. mamba_ssm-2.3.2.post1-)
  local f
  for f in "$WHEEL_DIR"/"$1"*.whl; do [ -f "$f" ] && { echo "$f"; return 0; }; done
  return 0
}

# build_one <key> <pip name> <version>: unpack, patch, `pip wheel`, install the wheel with --no-deps.
build_one() {
  local key=$1 name=$2 version=$3 norm=${2//-/_} start src whl work
  start=$(date +%s)
  whl=$(cached_wheel "$norm-$version-")
  if [ -n "$whl" ] && [ $FORCE = 0 ]; then
    log "$name: reusing built wheel $(basename "$whl")"
  else
    src=$(sdist_path "$name" "$version") || return 1
    work=$ROOT/build/cuda_ops/src-$key
    rm -rf "$work" && mkdir -p "$work"
    tar -xzf "$src" -C "$work" || return 1
    local tree
    tree=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)
    case $key in
      mamba|conv)
        patch_gencode "$tree/setup.py" || return 1
        [ "$CXX_STD" = 17 ] || sed -i "s/-std=c++17/-std=c++$CXX_STD/g" "$tree/setup.py"
        env MAMBA_FORCE_BUILD=TRUE CAUSAL_CONV1D_FORCE_BUILD=TRUE TORCH_CUDA_ARCH_LIST="$ARCH" MAX_JOBS="$JOBS" \
          $PY -m pip wheel -v --no-deps --no-build-isolation --no-index -w "$WHEEL_DIR" "$tree" \
          >"$LOG_DIR/$key.log" 2>&1 || { tail -n 60 "$LOG_DIR/$key.log" >&2; log "$name build FAILED (log: $LOG_DIR/$key.log)"; return 1; }
        ;;
      mmcv)
        if ! $PY -c 'import pkg_resources' 2>/dev/null; then
          log "mmcv $version's setup.py needs pkg_resources: installing setuptools<82"
          $PY -m pip install -q --find-links "$SDIST_DIR" --find-links "$ROOT/.whl" "setuptools>=77.0.3,<82" wheel || return 1
        fi
        sed -i 's/-std=c++17/-std=c++20/g; s/-std=c++14/-std=c++20/g' "$tree/setup.py" || return 1
        # -g0 -O3: debug info makes the build 2x slower and the wheel 25x larger.
        env FORCE_CUDA=1 MMCV_WITH_OPS=1 TORCH_CUDA_ARCH_LIST="$ARCH" MAX_JOBS="$JOBS" \
          CFLAGS="-DNDEBUG -O3 -fwrapv -Wall -g0" \
          $PY -m pip wheel -v --no-deps --no-build-isolation --no-index -w "$WHEEL_DIR" "$tree" \
          >"$LOG_DIR/$key.log" 2>&1 || { tail -n 60 "$LOG_DIR/$key.log" >&2; log "$name build FAILED (log: $LOG_DIR/$key.log)"; return 1; }
        ;;
    esac
    [ "${KEEP_BUILD:-0}" = 1 ] || rm -rf "$work"
    whl=$(cached_wheel "$norm-$version-")
    [ -n "$whl" ] || { log "$name: pip wheel produced no $norm-$version-*.whl in $WHEEL_DIR"; return 1; }
    log "$name $version built for sm_$SM in $(( $(date +%s) - start )) s ($(du -h "$whl" | cut -f1))"
  fi
  [ $INSTALL = 1 ] || return 0
  # --no-deps: mamba-ssm's requirements would pull transformers 5.x (breaks mmpretrain) and more.
  $PY -m pip install -q --no-deps --force-reinstall --no-index "$whl" || { log "$name: installing $whl FAILED"; return 1; }
}

# --------------------------------------------------------------------------------- already working?
check_mamba() { $PY -c "import selective_scan_cuda, mamba_ssm.ops.selective_scan_interface as s, importlib.metadata as m; assert m.version('mamba-ssm') == '$MAMBA_VERSION'" 2>/dev/null; }
check_conv() { $PY -c "import causal_conv1d_cuda, causal_conv1d, importlib.metadata as m; assert m.version('causal-conv1d') == '$CONV_VERSION'" 2>/dev/null; }
# NOTE: mmcv.ops.get_compiling_cuda_version() died with a segmentation fault for mmcv 2.1.0 built against
# torch 2.11 + CUDA 13.0 (H200, 2026-11-27) while the ops themselves worked: probe an op instead
check_mmcv() { $PY -c "
import mmcv, torch
assert mmcv.__version__ == '$MMCV_VERSION'
if torch.cuda.is_available():
    from mmcv.ops import nms
    nms(torch.tensor([[0., 0., 10., 10.]], device='cuda'), torch.ones(1, device='cuda'), 0.5)
else:
    import mmcv._ext  # noqa: F401  (compiled ops present; CUDA cannot be probed here)
" 2>/dev/null; }

todo=()
for key in mamba conv mmcv; do
  want $key || continue
  if [ $FORCE = 0 ] && [ $INSTALL = 1 ] && check_$key; then log "$key: already installed and working, skipped (--force rebuilds)"; else todo+=("$key"); fi
done
[ ${#todo[@]} -gt 0 ] || { log "nothing to do"; exit 0; }

t0=$(date +%s)
declare -A NAME=([mamba]=mamba-ssm [conv]=causal-conv1d [mmcv]=mmcv)
declare -A VER=([mamba]=$MAMBA_VERSION [conv]=$CONV_VERSION [mmcv]=$MMCV_VERSION)
bg_pid=""
status=0
if [ $PARALLEL = 1 ] && [[ " ${todo[*]} " == *" conv "* ]] && [ ${#todo[@]} -gt 1 ]; then
  # causal-conv1d's time is one large .cu file: build it alongside the others.
  log "causal-conv1d: building in the background (log: $LOG_DIR/conv.log)"
  ( build_one conv causal-conv1d $CONV_VERSION ) &
  bg_pid=$!
  rest=()
  for key in "${todo[@]}"; do [ "$key" = conv ] || rest+=("$key"); done
  todo=("${rest[@]}")
fi
for key in "${todo[@]}"; do
  build_one "$key" "${NAME[$key]}" "${VER[$key]}" || status=1
done
if [ -n "$bg_pid" ]; then
  wait "$bg_pid" || status=1
fi

# ------------------------------------------------------------------------------------------- verify
if [ $INSTALL = 1 ]; then
$PY - "$ONLY" <<'EOF' || status=1
import sys
import torch
parts = sys.argv[1].split(",")
ok = True
dev = "cuda" if torch.cuda.is_available() else None
def check(label, fn):
    global ok
    try:
        fn()
        print(f"[install_cuda_ops] OK   {label}")
    except Exception as e:  # report every failure, not just the first
        ok = False
        print(f"[install_cuda_ops] FAIL {label}: {type(e).__name__}: {e}")
def mamba():
    from mamba_ssm.ops.selective_scan_interface import selective_scan_fn
    if dev:
        b, e, n, l = 2, 8, 16, 64
        u = torch.randn(b, e, l, device=dev)
        out = selective_scan_fn(u, torch.rand_like(u), -torch.rand(e, n, device=dev), torch.randn(b, n, l, device=dev),
                                torch.randn(b, n, l, device=dev), delta_softplus=True)
        torch.cuda.synchronize(); assert torch.isfinite(out).all()
def conv():
    from causal_conv1d import causal_conv1d_fn
    if dev:
        x = torch.randn(2, 8, 64, device=dev)
        out = causal_conv1d_fn(x, torch.randn(8, 4, device=dev), torch.randn(8, device=dev), activation="silu")
        torch.cuda.synchronize(); assert torch.isfinite(out).all()
def mmcv():
    import mmcv._ext  # noqa: F401  (get_compiling_cuda_version() segfaults here: see check_mmcv)
    from mmcv.ops import nms
    if dev:  # a build without CUDA ops raises here
        boxes = torch.tensor([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], dtype=torch.float32, device=dev)
        _, keep = nms(boxes, torch.tensor([0.9, 0.8, 0.7], device=dev), 0.5)
        assert keep.tolist() == [0, 2], keep
names = {"mamba": ("mamba-ssm selective_scan_fn", mamba), "conv": ("causal-conv1d causal_conv1d_fn", conv),
         "mmcv": ("mmcv CUDA ops (nms)", mmcv)}
for p in parts:
    check(*names[p])
sys.exit(0 if ok else 1)
EOF
fi
log "done in $(( $(date +%s) - t0 )) s (status $status); wheels kept in $WHEEL_DIR"
exit $status
