"""Serving an alias: published bundles, the follower's swaps and refusals, and a swap under load."""

from __future__ import annotations

import http.client
import io
import json
import logging
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="serving needs the serve extra")

from PIL import Image

from visionloop.errors import UsageError
from visionloop.export.bundle import materialize_bundle, publish_bundle
from visionloop.registry.aliases import promote, rollback
from visionloop.registry.versions import add_artifacts, get_model, register_model, set_status
from visionloop.serve.follow import AliasFollower, bundle_cache, open_alias
from visionloop.serve.model import Holder
from visionloop.workspace import Workspace

VISIONLOOP = str(Path(sys.executable).with_name("visionloop"))


def _jpeg(size: tuple[int, int] = (160, 120)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 160, 40)).save(buf, "JPEG")
    return buf.getvalue()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _promote(ws: Workspace, version: int) -> None:
    promote(ws, version, actor="test", reason=None)


def test_publish_and_materialize_are_idempotent(ws: Workspace, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="has no published bundle") as err:
        materialize_bundle(ws, 1, tmp_path / "b")
    assert err.value.fix == "run `visionloop bundle 1`"
    first = publish_bundle(ws, 1)
    artifacts, blobs = get_model(ws, 1).artifacts, set(ws.blobs)
    assert publish_bundle(ws, 1) == first
    assert get_model(ws, 1).artifacts == artifacts and set(ws.blobs) == blobs  # nothing written again
    assert first["files"]["model.onnx"]["sha256"] == artifacts["model.onnx"]  # a blob's oid is its sha256

    b = materialize_bundle(ws, 1, tmp_path / "b")
    assert b.version == 1 and sorted(p.name for p in b.path.iterdir()) == [
        "MODEL_CARD.md",
        "bundle.json",
        "model.onnx",
    ]
    inode = (b.path / "model.onnx").stat().st_ino
    assert materialize_bundle(ws, 1, tmp_path / "b").manifest == b.manifest
    assert (b.path / "model.onnx").stat().st_ino == inode  # an intact folder is reused
    with (b.path / "model.onnx").open("ab") as f:
        f.write(b"tampered")
    assert materialize_bundle(ws, 1, tmp_path / "b").version == 1  # a changed folder is written anew
    assert [p.name for p in tmp_path.iterdir()] == ["b", "p"]  # no temporary folder left behind

    again = publish_bundle(ws, 1, score_threshold=0.5)
    assert (
        again["score_threshold"] == 0.5
        and get_model(ws, 1).artifacts["bundle.json"] != artifacts["bundle.json"]
    )
    assert materialize_bundle(ws, 1, tmp_path / "b").manifest["score_threshold"] == 0.5


def test_an_unexported_version_says_so(ws: Workspace, tmp_path: Path) -> None:
    v = _unexported(ws)
    for call in (lambda: publish_bundle(ws, v), lambda: materialize_bundle(ws, v, tmp_path / "b")):
        with pytest.raises(UsageError, match=f"model version {v} has not been exported") as err:
            call()
        assert err.value.fix == f"run `visionloop export {v}`"


def _unexported(ws: Workspace) -> int:
    """A new approved version of v1's run and weights, never exported."""
    m = get_model(ws, 1)
    v = register_model(
        ws,
        run_id=m.run_id,
        dataset_version_id=m.dataset_version_id,
        architecture=m.architecture,
        weights_oid=m.weights_oid,
        classes=m.classes,
        imgsz=m.imgsz,
        metrics=m.metrics,
        artifacts={},
        lineage=m.lineage,
        created_by="test",
    )
    set_status(ws, v, "approved")
    return v


def test_the_follower_swaps_when_the_alias_moves(ws: Workspace) -> None:
    _promote(ws, 1)
    holder = Holder(open_alias(ws, "production"))  # publishes v1 itself: it was only exported
    assert holder.current.version == 1 and "bundle.json" in get_model(ws, 1).artifacts
    follower = AliasFollower(ws, "production", holder)
    assert not follower.poll()
    _promote(ws, 2)
    assert follower.poll() and holder.current.version == 2
    assert holder.current.bundle.path == bundle_cache(ws) / "v2"
    rollback(ws, actor="test", reason="back")
    assert follower.poll() and holder.current.version == 1
    assert follower.status() == {
        "alias": "production",
        "alias_version": 1,
        "pending_error": None,
        "failed_attempts": 0,
    }


def _corrupt_bundle_json(ws: Workspace, version: int) -> tuple[Path, bytes]:
    publish_bundle(ws, version)
    path = ws.blobs.path(get_model(ws, version).artifacts["bundle.json"])
    good = path.read_bytes()
    path.write_bytes(good.replace(b'"score_threshold": 0.25', b'"score_threshold": 0.0'))
    return path, good


@pytest.mark.parametrize("fault", ["unexported", "tampered"])
def test_a_bundle_that_fails_is_never_swapped_in(
    ws: Workspace, fault: str, caplog: pytest.LogCaptureFixture
) -> None:
    _promote(ws, 1)
    now = [0.0]
    holder = Holder(open_alias(ws, "production"))
    follower = AliasFollower(ws, "production", holder, poll_seconds=1.0, clock=lambda: now[0])
    if fault == "unexported":
        bad = _unexported(ws)
        why = f"model version {bad} has not been exported"
    else:
        bad = 2
        blob, good = _corrupt_bundle_json(ws, bad)
        why = "does not match its hash"
    _promote(ws, bad)
    with caplog.at_level(logging.WARNING, logger="visionloop.serve"):
        for _ in range(20):  # polls within the back-off do not try again
            assert not follower.poll()
        now[0] += 3
        assert not follower.poll()  # tried again after the back-off; still failing, not logged again
    assert holder.current.version == 1
    status = follower.status()
    assert (
        status["alias_version"] == bad and status["failed_attempts"] == 2 and why in status["pending_error"]
    )
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 1 and why in logged[0] and "still serving v1" in logged[0]
    now[0] += 3
    assert not follower.poll() and follower.status()["failed_attempts"] == 2  # the back-off doubled: 4 s
    if fault == "unexported":
        m = get_model(ws, 1).artifacts
        add_artifacts(ws, bad, {"model.onnx": m["model.onnx"], "export.json": m["export.json"]})
    else:
        blob.write_bytes(good)
    now[0] += 60
    assert follower.poll() and holder.current.version == bad and follower.status()["pending_error"] is None


def test_the_follower_thread_stops(ws: Workspace) -> None:
    _promote(ws, 1)
    holder = Holder(open_alias(ws, "production"))
    follower = AliasFollower(ws, "production", holder, poll_seconds=0.05)
    follower.start()
    _promote(ws, 2)
    deadline = time.monotonic() + 20
    while holder.current.version != 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    follower.stop()
    assert holder.current.version == 2 and not any(
        t.name == "follow-production" for t in threading.enumerate()
    )


def test_serving_an_alias_that_names_nothing_exits_clearly(project: Path) -> None:
    cmd = [VISIONLOOP, "-w", str(project), "serve", "--port", str(_free_port())]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert res.returncode == 7, res.stderr
    assert "alias 'production' names no model version" in res.stderr and "Traceback" not in res.stderr
    res = subprocess.run([*cmd, "--alias", "a", "--bundle", "b"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "--alias and --bundle exclude each other" in res.stderr


class _Server:
    """``visionloop serve`` as a real process on a free loopback port."""

    def __init__(self, project: Path, *args: str) -> None:
        self.port = _free_port()
        self.log = project.parent / "serve.log"
        cmd = [VISIONLOOP, "-w", str(project), "serve", "--port", str(self.port), *args]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self.log.open("wb"))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if self.get("/readyz")["status"] == "ready":
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"the server did not start: {self.log.read_text()}")

    def get(self, path: str) -> dict[str, object]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            conn.request("GET", path)
            return dict(json.loads(conn.getresponse().read()))
        finally:
            conn.close()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


@pytest.mark.slow
def test_swaps_under_load_lose_no_request(project: Path, ws: Workspace) -> None:
    """50 clients for 30 s while production moves v1 → v2 → v3: every answer is a 200, and the
    answers follow the alias."""
    _promote(ws, 1)
    server = _Server(project, "--poll-seconds", "0.2")
    image = _jpeg()
    results: list[tuple[float, int, int | None]] = []  # (sent at, status, model_version)
    stop_at = time.monotonic() + 30

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        mine = []
        while time.monotonic() < stop_at:
            sent = time.monotonic()
            try:
                conn.request("POST", "/v1/detect", body=image, headers={"content-type": "image/jpeg"})
                r = conn.getresponse()
                body = r.read()
                version = json.loads(body)["model_version"] if r.status == 200 else None
                mine.append((sent, r.status, version))
            except (OSError, http.client.HTTPException):
                mine.append((sent, 0, None))  # a dropped connection is a failed request
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        conn.close()
        results.extend(mine)

    try:
        threads = [threading.Thread(target=client) for _ in range(50)]
        for t in threads:
            t.start()
        time.sleep(8)
        _promote(ws, 2)
        time.sleep(8)
        _promote(ws, 3)
        last_move = time.monotonic()
        for t in threads:
            t.join()
        ready = server.get("/readyz")
    finally:
        server.stop()
    failed = [r for r in results if r[1] != 200]
    seen = {r[2] for r in results}
    late = {r[2] for r in results if r[0] > last_move + 5}
    print(f"{len(results)} requests, {len(failed)} failed, versions seen {sorted(seen)}")
    assert len(results) > 200 and not failed, failed[:5]
    assert seen == {1, 2, 3} and late == {3}
    assert ready["model_version"] == 3 and ready["alias"] == "production" and ready["alias_version"] == 3
    log = server.log.read_text()
    assert "now serving v2 (was v1)" in log and "now serving v3 (was v2)" in log
