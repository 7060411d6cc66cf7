"""torch -> ONNX model packages: export with the parity check, FP16 conversion, INT8 Q/DQ
calibration and TensorRT's Q/DQ rules. Needs the `train` extra (torch, onnxscript,
onnxconverter-common)."""
