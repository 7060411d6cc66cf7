"""What every layer shares: the model package sidecar (and its schema and graph check), frames
and sizes, the checkpoint format, GPU discovery, paths and atomic outputs, streaming statistics,
signals. Nothing here imports torch, tensorrt or a CUDA package at import time."""
