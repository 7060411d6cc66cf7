"""What every layer shares: the model package sidecar, frames and sizes, the checkpoint format,
GPU discovery. Nothing here imports torch, tensorrt or a CUDA package at import time."""
