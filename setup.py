"""Vision Mamba (Vim) as an OpenMMLab backbone.

mmcv 2.1.0 (with ops) is only on the registry as an sdist that needs two fixes to build with
torch 2.14: `bash tools/install.sh` does that, then installs this package. The pins below are the
ranges the test suite runs against.
"""
from pathlib import Path

from setuptools import find_packages, setup

version = {}
exec(Path("vim_backbone/version.py").read_text(), version)

setup(
    name="vim_backbone",
    version=version["__version__"],
    description="Vision Mamba (Vim) backbone for mmdet, mmseg, mmpretrain and timm",
    long_description=Path("README.md").read_text() if Path("README.md").exists() else "",
    long_description_content_type="text/markdown",
    packages=find_packages(include=["vim_backbone", "vim_backbone.*"]),
    python_requires=">=3.9",
    install_requires=[
        "torch>=2.1,<=2.14.1",
        "torchvision>=0.16,<=0.29.1",
        "timm>=1.0.9,<2",
        "einops>=0.7",
        "numpy>=1.24",
        "mmengine==0.10.7",
        "mmcv>=2.1.0,<2.2.0",  # mmdet 3.3 / mmseg 1.2 assert mmcv<2.2.0 at import
        "mmdet==3.3.0",
        "mmsegmentation==1.2.2",
        "ftfy",  # mmseg imports it unconditionally
        "regex",
        "mmpretrain==1.2.0",
        "pycocotools>=2.0.7",
        "matplotlib",
        "tqdm",
    ],
    extras_require={
        # Built from sdists for the local GPU only: tools/install_cuda_ops.sh.
        "cuda": [
            "mamba-ssm==2.3.2.post1",
            "causal-conv1d==1.7.0",
            "transformers==4.51.3",  # mamba-ssm pulls 5.x, which breaks mmpretrain 1.2.0
        ],
        "dev": ["pytest>=7", "pytest-timeout"],
    },
)
