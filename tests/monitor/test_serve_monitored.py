"""`visionloop serve` with monitoring, end to end: a real server process, real HTTP uploads, and the
windows it records in the workspace; monitoring stays out of the answers."""

from __future__ import annotations

import http.client
import io
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from monitor.conftest import traffic
from visionloop.store import schema
from visionloop.workspace import open_workspace

VISIONLOOP = str(Path(sys.executable).with_name("visionloop"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _post(port: int, body: bytes) -> tuple[int, dict[str, object], dict[str, str]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v1/detect", body=body, headers={"Content-Type": "image/jpeg"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read()), {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()


def _ready(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"the server did not start: {log.read_text()}")


def test_a_monitored_server_records_windows_of_its_answers(monitored_project: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(monitored_project, tmp_path / "p"))
    toml = root / ".visionloop" / "visionloop.toml"
    text = toml.read_text()
    text = text.replace("window_size = 200", "window_size = 20").replace("min_window = 50", "min_window = 10")
    toml.write_text(text.replace("sample_rate = 0.01", "sample_rate = 0.5"))
    port, log = _free_port(), tmp_path / "serve.log"
    proc = subprocess.Popen(
        [VISIONLOOP, "-w", str(root), "serve", "--port", str(port), "--monitor"],
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    try:
        _ready(port, proc, log)
        for image, _truth in traffic("day", 40, 7):
            buf = io.BytesIO()
            image.save(buf, "JPEG", quality=90)
            status, answer, headers = _post(port, buf.getvalue())
            assert status == 200 and answer["model_version"] == 1 and headers["x-model-version"] == "1"
            assert set(answer) == {"model_version", "route", "image", "detections"}
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0, log.read_text()
    with open_workspace(root) as ws, ws.engine.connect() as conn:
        windows = conn.execute(
            select(
                schema.monitor_windows.c.n,
                schema.monitor_windows.c.route,
                schema.monitor_windows.c.model_version,
            )
        ).all()
        sampled = conn.execute(select(schema.items.c.name).where(schema.items.c.status == "unlabeled")).all()
    assert sum(n for n, _, _ in windows) == 40, (
        windows
    )  # every answer recorded, the last window flushed on stop
    assert {(route, v) for _, route, v in windows} == {("production", 1)}
    assert 5 <= len(sampled) <= 35  # about half the uploads kept as unlabeled items for review
