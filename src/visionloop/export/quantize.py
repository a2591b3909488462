"""int8 quantization (ONNX Runtime static QDQ, calibrated on real images) and the ORT format
for ONNX Runtime Mobile."""

from __future__ import annotations

import logging
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def quantize_int8(data: bytes, calibration: Sequence[np.ndarray]) -> bytes:
    """Static int8 quantization of the convolutions (per channel), calibrated on ``calibration`` inputs."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._it = iter([{"image": x} for x in calibration])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self._it, None)

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # onnxruntime prints its pre-processing advice through the root logger
    try:
        with tempfile.TemporaryDirectory() as tmp:
            src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
            src.write_bytes(data)
            quantize_static(
                str(src),
                str(dst),
                Reader(),
                quant_format=QuantFormat.QDQ,
                op_types_to_quantize=["Conv"],
                per_channel=True,
                weight_type=QuantType.QInt8,
                activation_type=QuantType.QUInt8,
            )
            return dst.read_bytes()
    finally:
        root.setLevel(level)


def to_ort_format(data: bytes) -> bytes:
    """The model in ORT format (for ONNX Runtime Mobile), via onnxruntime's own converter."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "model.onnx"
        src.write_bytes(data)
        out = Path(tmp) / "out"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "onnxruntime.tools.convert_onnx_models_to_ort",
                str(src),
                "--output_dir",
                str(out),
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
        return (out / "model.ort").read_bytes()
