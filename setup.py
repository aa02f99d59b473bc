"""Install plksr-arch: PLKSR as a BasicSR plugin (architecture, model, `plksr` command)."""

import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = re.search(r'__version__ = "([^"]+)"', (HERE / "plksr_arch" / "version.py").read_text()).group(1)

setup(
    name="plksr-arch",
    version=VERSION,
    description="PLKSR (Partial Large Kernel CNNs for Efficient Super-Resolution) as a BasicSR plugin",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["plksr_arch", "plksr_arch.*"]),
    package_data={"plksr_arch": ["resources/*.yml"]},
    install_requires=[
        "basicsr==1.4.2",
        "torch>=2.1",
        "torchvision",
        "opencv-python",
        "numpy",
        "pyyaml",
        # lmdb 2.x refuses to open one environment twice in a process, which BasicSR's paired LMDB dataset does.
        "lmdb<2",
        # skimage ships the CC0 photos of the embedded demo; it is a basicsr dependency, named here because we use it.
        "scikit-image",
        "tqdm",
        "safetensors",
    ],
    extras_require={
        "plot": ["matplotlib"],
        # `plksr bench --paper`: the compared methods spandrel implements (SRFormer lives in its extra arches).
        "bench": ["spandrel", "spandrel_extra_arches"],
        # `plksr export` (ONNX, checked with onnxruntime; torch's exporter needs onnxscript) and `--format coreml`.
        "export": ["onnx", "onnxscript", "onnxruntime"],
        "coreml": ["coremltools"],
        # `plksr infer` on videos: PyAV, whose wheels bundle FFmpeg (with GPL encoders such as x264).
        "video": ["av>=18"],
        "dev": [
            "pytest",
            "pytest-xdist",
            "ruff",
            "matplotlib",
            "spandrel",
            "spandrel_extra_arches",
            "onnx",
            "onnxscript",
            "onnxruntime",
            "coremltools",
            "av>=18",
        ],
    },
    entry_points={"console_scripts": ["plksr = plksr_arch.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Image Processing",
    ],
)
