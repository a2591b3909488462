"""Export: ONNX with a parity check against the PyTorch model, and its CPU latency."""
