"""Serving: FastAPI + ONNX Runtime over a verified bundle. Never imports torch."""
