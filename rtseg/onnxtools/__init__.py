"""Torch-free ONNX tools: wrapping a foreign graph into a model package (`wrap_onnx`), the Q/DQ
rules TensorRT needs (`qdq_rules`) and Triton model repositories (`triton`). They need only
`onnx` (an inference dependency), so engine building, import and serving never pull in torch;
torch -> ONNX export stays in rtseg.export."""
