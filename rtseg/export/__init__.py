"""Checkpoint -> model package: torch -> ONNX with the parity check, fp16 conversion, int8 Q/DQ
calibration. Needs the `train` extra (torch, onnxscript, onnxconverter-common)."""
