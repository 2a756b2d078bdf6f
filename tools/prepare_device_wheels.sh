#!/usr/bin/env bash
# Download, on a machine that is online, everything an offline GPU machine needs beyond its own image
# to run this project's stack and build its CUDA ops:
#   .whl/    py3 / cp312 manylinux wheels (OpenMMLab stack, transformers 4.51.3 and the small pure-python
#            packages they import), installed there with
#            pip install --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
#   .sdist/  mamba-ssm, causal-conv1d and mmcv source archives for tools/install_cuda_ops.sh
#
#   bash tools/prepare_device_wheels.sh                      # Python 3.12, x86-64 (the default)
#   PY_VERSION=3.11 bash tools/prepare_device_wheels.sh      # another target Python
#
# Packages the target image already has (torch, numpy, scipy, matplotlib, opencv-python-headless,
# pyyaml, rich, tqdm, regex, requests, safetensors, einops, pytest, ...) are not fetched; edit WHEELS
# for another image. Both folders are git-ignored. Keep them small: a device call carries at most
# 64 MiB in all (these are ~29 MiB).
# The sdist download runs each setup.py for its metadata, so PYTHON (default python3) must have torch.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PY_VERSION=${PY_VERSION:-3.12}
WHL_DIR=${WHL_DIR:-.whl}
SDIST_DIR=${SDIST_DIR:-.sdist}

# One version of each (two versions of one package stop `pip install --no-deps` of the whole folder).
WHEELS=(
  # OpenMMLab (mmcv is built from source: tools/install_cuda_ops.sh)
  mmengine==0.10.7 mmdet==3.3.0 mmsegmentation==1.2.2 mmpretrain==1.2.0
  # mamba-ssm imports transformers; 5.x breaks mmpretrain 1.2.0. 4.51.3 wants these hub/tokenizers.
  transformers==4.51.3 tokenizers==0.21.4 huggingface-hub==0.36.2
  # imported by mmengine / mmcv
  addict==2.4.0 yapf==0.43.0 platformdirs==4.14.8 termcolor==3.3.0
  # imported by mmdet
  pycocotools==2.0.11 terminaltables==3.1.10 shapely==2.2.0
  # imported by mmseg
  ftfy==6.3.1 wcwidth==0.9.4 prettytable==3.18.0
  # imported by mmpretrain
  # (model-index is the package mmpretrain imports as `modelindex`; importlib-metadata 10 needs lazy_importer)
  mat4py==0.6.0 model-index==0.1.11 markdown==3.11.3 click==8.5.1 ordered-set==4.1.0 importlib-metadata==8.7.0
  # timm pinned to what the benchmark and tests ran with (the image's own may be older)
  timm==1.0.31
  # mmcv 2.1.0's setup.py imports pkg_resources, gone in setuptools 82
  setuptools==81.0.0
)
SDISTS=(mamba-ssm==2.3.2.post1 causal-conv1d==1.7.0 mmcv==2.1.0)

mkdir -p "$WHL_DIR" "$SDIST_DIR"
echo "[prepare] wheels for CPython $PY_VERSION x86-64 -> $WHL_DIR"
# manylinux tags are matched exactly: list the ones these packages publish.
$PY -m pip download -q --no-deps --only-binary=:all: --python-version "$PY_VERSION" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
  -d "$WHL_DIR" "${WHEELS[@]}"

echo "[prepare] sdists -> $SDIST_DIR"
MAMBA_SKIP_CUDA_BUILD=TRUE CAUSAL_CONV1D_SKIP_CUDA_BUILD=TRUE \
  $PY -m pip download -q --no-deps --no-binary :all: --no-build-isolation -d "$SDIST_DIR" "${SDISTS[@]}"

# Two versions of one package (left from an older run) would break the offline install: refuse.
dups=$(ls "$WHL_DIR"/*.whl | xargs -n1 basename | cut -d- -f1 | tr 'A-Z-' 'a-z_' | sort | uniq -d)
if [ -n "$dups" ]; then
  echo "[prepare] $WHL_DIR holds several versions of: $dups; delete the old ones" >&2
  exit 1
fi
du -sh "$WHL_DIR" "$SDIST_DIR"
echo "[prepare] total $(du -cb "$WHL_DIR" "$SDIST_DIR" | tail -n1 | awk '{printf "%.1f MiB", $1 / 1048576}') (device calls carry at most 64 MiB)"
