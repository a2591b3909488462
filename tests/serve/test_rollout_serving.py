"""Rollout in the server, over real HTTP: canary share, device stickiness, instant rollback, shadow,
the admin routes' API key, and the `visionloop rollout` commands on a workspace."""

from __future__ import annotations

import http.client
import io
import json
import logging
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="serving needs the serve extra")

import uvicorn
from PIL import Image

from _helpers import run_cli
from visionloop.registry.aliases import promote, resolve_alias
from visionloop.serve.app import create_app
from visionloop.serve.follow import AliasFollower, bundle_cache, open_alias, prepare_bundle
from visionloop.serve.model import Holder, load
from visionloop.serve.observe import Observation
from visionloop.serve.rollout import Rollout
from visionloop.serve.rollout_control import RolloutControl
from visionloop.serve.rollout_state import current_rollout, rollout_history, start_rollout
from visionloop.workspace import Workspace, open_workspace


def _jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (96, 96), (30, 160, 40)).save(buf, "JPEG")
    return buf.getvalue()


IMAGE = _jpeg()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """A real server (uvicorn on a free loopback port, in a thread) over the workspace in ``project``."""

    def __init__(
        self,
        project: Path | None = None,
        *,
        holder: Holder | None = None,
        control: RolloutControl | None = None,
        api_key: str | None = None,
        observer: Callable[[Observation], None] | None = None,
        shadow_in_flight: int = 2,
    ) -> None:
        follower = None
        self.ws: Workspace | None = None
        if project is not None:
            self.ws = open_workspace(project)
            holder = Holder(open_alias(self.ws, "production"))
            follower = AliasFollower(self.ws, "production", holder, poll_seconds=0.1)
            control = RolloutControl(holder, ws=self.ws, poll_seconds=0.1)
        assert holder is not None
        app = create_app(
            holder,
            api_key=api_key,
            follower=follower,
            observer=observer,
            rollout=control,
            shadow_in_flight=shadow_in_flight,
        )
        self.control: RolloutControl = app.state.rollout
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "the test server did not start"
            time.sleep(0.02)

    def call(
        self,
        method: str,
        path: str,
        body: bytes | dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        conn: http.client.HTTPConnection | None = None,
    ) -> tuple[int, dict[str, str], Any]:
        own = conn is None
        conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            data = json.dumps(body).encode() if isinstance(body, dict) else body
            conn.request(method, path, body=data, headers=headers or {})
            r = conn.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, json.loads(r.read() or b"null")
        finally:
            if own:
                conn.close()

    def detect(
        self, device: str | None = None, conn: http.client.HTTPConnection | None = None
    ) -> tuple[int, str, int]:
        """One detect request: (model_version, route) checked against the headers."""
        headers = {"content-type": "image/jpeg"} | ({"x-device-id": device} if device else {})
        status, h, body = self.call("POST", "/v1/detect", IMAGE, headers, conn)
        assert status == 200, body
        assert h["x-model-version"] == str(body["model_version"]) and h["x-model-route"] == body["route"]
        return status, body["route"], int(body["model_version"])

    def metrics(self) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request("GET", "/metrics")
            return conn.getresponse().read().decode()
        finally:
            conn.close()

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        if self.ws is not None:
            self.ws.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    started: list[Served] = []

    def start(*args: Any, **kwargs: Any) -> Served:
        started.append(Served(*args, **kwargs))
        return started[-1]

    yield start
    for s in started:
        s.close()


def _production(ws: Workspace, version: int) -> None:
    promote(ws, version, actor="test", reason=None)


def _wait(cond: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_canary_at_20_percent_over_1000_requests(
    project: Path, ws: Workspace, serve: Callable[..., Served]
) -> None:
    _production(ws, 1)
    start_rollout(ws, "canary", 2, 20, actor="test", reason="try v2")
    server = serve(project)
    assert server.control.summary() == {
        "mode": "canary",
        "percent": 20.0,
        "production_version": 1,
        "candidate_version": 2,
    }
    answers: list[tuple[str, int]] = []
    lock = threading.Lock()

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        mine = [server.detect(conn=conn)[1:] for _ in range(250)]
        conn.close()
        with lock:
            answers.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(answers) == 1000 and set(answers) == {("production", 1), ("canary", 2)}
    canary = Counter(route for route, _ in answers)["canary"]
    assert 160 <= canary <= 240  # the requirement: 20 ± 4%
    assert abs(canary - 200) <= 3  # the design: the counter spreads the candidate evenly, not by luck
    status, _, rollout = server.call("GET", "/v1/rollout")
    assert status == 200 and rollout["counts"]["canary"] == canary
    assert rollout["counts"]["production"] == 1000 - canary
    assert rollout["recorded"]["actor"] == "test" and rollout["candidate_alias_version"] == 2
    text = server.metrics()
    assert f'visionloop_requests_total{{model_version="2",route="canary",status="200"}} {canary}.0' in text
    assert (
        f'visionloop_requests_total{{model_version="1",route="production",status="200"}} {1000 - canary}.0'
        in text
    )
    assert 'visionloop_detect_seconds_count{model_version="2",route="canary"}' in text
    ready = server.call("GET", "/readyz")[2]
    assert ready["rollout"]["mode"] == "canary" and ready["rollout"]["candidate_version"] == 2


def test_a_device_always_gets_the_same_model(
    project: Path, ws: Workspace, serve: Callable[..., Served]
) -> None:
    _production(ws, 1)
    start_rollout(ws, "canary", 3, 50, actor="test", reason=None)
    server = serve(project)
    seen: dict[str, set[tuple[str, int]]] = {}
    for _ in range(4):
        for i in range(20):
            seen.setdefault(f"phone-{i}", set()).add(server.detect(device=f"phone-{i}")[1:])
    assert all(len(s) == 1 for s in seen.values()), seen
    assert {next(iter(s)) for s in seen.values()} == {("production", 1), ("canary", 3)}


def test_rollback_takes_effect_on_the_next_request(
    project: Path,
    ws: Workspace,
    serve: Callable[..., Served],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _production(ws, 1)
    start_rollout(ws, "canary", 2, 100, actor="test", reason=None)
    server = serve(project)
    assert [server.detect()[1:] for _ in range(5)] == [("canary", 2)] * 5
    status, _, body = server.call("POST", "/v1/rollout/rollback", {"by": "oncall", "reason": "bad boxes"})
    assert status == 200 and body["mode"] == "off" and body["record_error"] is None
    assert [server.detect()[1:] for _ in range(20)] == [("production", 1)] * 20  # the very next request on
    now = current_rollout(ws)
    assert (now.mode, now.actor, now.reason, now.candidate_version) == ("off", "oncall", "bad boxes", 2)
    time.sleep(0.5)  # several polls: the recorded rollback keeps it off, and the candidate is let go
    assert server.detect()[1:] == ("production", 1) and server.control.candidate is None

    # a canary set at runtime over HTTP loads the candidate before it answers
    status, _, body = server.call("POST", "/v1/rollout", {"mode": "canary", "percent": 100, "by": "ops"})
    assert status == 200 and body["candidate_version"] == 2 and server.detect()[1:] == ("canary", 2)
    assert current_rollout(ws).actor == "ops"
    # and `visionloop rollout rollback --url` goes through the server
    monkeypatch.setenv("VISIONLOOP_WORKSPACE", str(project))
    code, out, err = run_cli(capsys, monkeypatch, "rollout", "rollback", "--url", server.url, "--by", "cli")
    assert code == 0, err
    assert "production v1 answers every request" in out and server.detect()[1:] == ("production", 1)
    assert [r.mode for r in rollout_history(ws, 4)] == ["off", "canary", "off", "canary"]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        ({"mode": "canary", "percent": 120}, 400, "the rollout percent must be within 0..100, not 120.0"),
        (
            {"mode": "canary", "percent": "x"},
            400,
            "the rollout percent must be a number within 0..100, not 'x'",
        ),
        ({"mode": "blue", "percent": 5}, 400, "unknown rollout mode 'blue'"),
        (b"{", 400, "the body is not JSON"),
    ],
)
def test_a_bad_rollout_change_is_refused(
    project: Path, ws: Workspace, serve: Callable[..., Served], body: Any, status: int, error: str
) -> None:
    _production(ws, 1)
    server = serve(project)
    got, _, answer = server.call("POST", "/v1/rollout", body, {"content-type": "application/json"})
    assert (got, answer["error"]) == (status, error)
    assert current_rollout(ws).id is None


def test_shadow_answers_are_logged_never_returned(
    project: Path, ws: Workspace, serve: Callable[..., Served], caplog: pytest.LogCaptureFixture
) -> None:
    _production(ws, 1)
    start_rollout(ws, "shadow", 2, 100, actor="test", reason=None)
    observed: list[Observation] = []
    server = serve(project, observer=observed.append)
    with caplog.at_level(logging.INFO, logger="visionloop.shadow"):
        assert [server.detect()[1:] for _ in range(30)] == [("production", 1)] * 30
        _wait(
            lambda: sum(server.control.status()["counts"][k] for k in ("shadow", "shadow_skipped")) == 30,
            "the shadow copies",
        )
    counts = server.control.status()["counts"]
    assert counts["production"] == 30 and counts["canary"] == 0 and counts["shadow"] >= 1
    assert counts["shadow_failed"] == 0
    shadow = [o for o in observed if o.route == "shadow"]
    assert len(shadow) == counts["shadow"] and {o.model_version for o in shadow} == {2}
    assert {(o.route, o.model_version) for o in observed if o.route != "shadow"} == {("production", 1)}
    logged = [r.getMessage() for r in caplog.records if r.name == "visionloop.shadow"]
    assert len(logged) == counts["shadow"] and logged[0].startswith("shadow v2 vs production v1: ")
    assert "agreement" in logged[0]
    text = server.metrics()
    assert f'visionloop_shadow_requests_total{{model_version="2",status="ok"}} {counts["shadow"]}.0' in text
    assert f"visionloop_shadow_skipped_total {counts['shadow_skipped']}.0" in text
    assert 'visionloop_shadow_agreement_count{model_version="2"}' in text


def test_the_admin_routes_need_the_api_key(
    project: Path, ws: Workspace, serve: Callable[..., Served]
) -> None:
    _production(ws, 1)
    start_rollout(ws, "canary", 2, 100, actor="test", reason=None)
    server = serve(project, api_key="s3cret")
    key = {"x-api-key": "s3cret"}
    for method, path in (("GET", "/v1/rollout"), ("POST", "/v1/rollout/rollback"), ("POST", "/v1/rollout")):
        for headers in ({}, {"x-api-key": "wrong"}):
            status, _, body = server.call(method, path, {"mode": "off"}, headers)
            assert status == 401 and body["error"] == "missing or wrong API key", (method, path)
    assert server.control.router.rollout == Rollout("canary", 100)  # refused: nothing changed
    assert server.call("GET", "/v1/rollout", headers=key)[0] == 200
    assert server.call("POST", "/v1/rollout/rollback", headers={"authorization": "Bearer s3cret"})[0] == 200
    assert server.control.router.rollout == Rollout()


def test_a_candidate_bundle_without_a_workspace(ws: Workspace, serve: Callable[..., Served]) -> None:
    cache = bundle_cache(ws)
    holder = Holder(load(prepare_bundle(ws, 1, cache)))
    server = serve(holder=holder)  # no candidate: a canary is refused
    status, _, body = server.call("POST", "/v1/rollout", {"mode": "canary", "percent": 50})
    assert (status, body["error"]) == (400, "a canary needs a candidate, and this server has none")
    candidate = load(prepare_bundle(ws, 2, cache))
    control = RolloutControl(holder, candidate=candidate, rollout=Rollout("canary", 100))
    server = serve(holder=holder, control=control)
    assert server.detect()[1:] == ("canary", 2)
    status, _, body = server.call("POST", "/v1/rollout/rollback")
    assert status == 200 and body["recorded"] is None and server.detect()[1:] == ("production", 1)


def test_serve_options_for_a_candidate_bundle(
    project: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VISIONLOOP_WORKSPACE", str(project))
    code, _, err = run_cli(capsys, monkeypatch, "serve", "--candidate-bundle", "x")
    assert code == 2 and "--candidate-bundle, --rollout and --percent go with --bundle" in err
    code, _, err = run_cli(capsys, monkeypatch, "serve", "--bundle", "b", "--rollout", "blue")
    assert code == 2 and "unknown rollout mode 'blue'" in err


def _cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str
) -> tuple[int, str, str]:
    return run_cli(capsys, monkeypatch, *args)


def test_rollout_commands(
    project: Path, ws: Workspace, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VISIONLOOP_WORKSPACE", str(project))
    code, out, _ = _cli(capsys, monkeypatch, "rollout", "status", "--json")
    assert code == 0 and json.loads(out)["mode"] == "off" and json.loads(out)["history"] == []
    code, _, err = _cli(capsys, monkeypatch, "rollout", "promote")
    assert code == 7 and "alias 'candidate' names no model version, so there is nothing to promote" in err
    _production(ws, 1)
    code, _, err = _cli(capsys, monkeypatch, "rollout", "canary", "9", "--percent", "20")
    assert code == 7 and "no model version 9" in err and "Traceback" not in err
    code, _, err = _cli(capsys, monkeypatch, "rollout", "canary", "2", "--percent", "120")
    assert code == 2 and "the rollout percent must be within 0..100, not 120.0" in err
    code, _, err = _cli(capsys, monkeypatch, "rollout", "canary", "1")
    assert code == 2 and "v1 is the production model" in err
    assert resolve_alias(ws, "candidate") is None  # nothing moved on a refusal

    code, out, err = _cli(
        capsys, monkeypatch, "rollout", "canary", "2", "--percent", "20", "--reason", "try it"
    )
    assert code == 0, err
    assert "canary: candidate v2 answers 20% of requests" in out
    assert resolve_alias(ws, "candidate") == 2
    code, out, _ = _cli(capsys, monkeypatch, "rollout", "status")
    assert code == 0 and "production: v1; candidate: v2" in out and "try it" in out
    code, out, _ = _cli(capsys, monkeypatch, "rollout", "rollback", "--by", "oncall", "--json")
    assert code == 0 and json.loads(out)["mode"] == "off" and json.loads(out)["actor"] == "oncall"
    code, out, _ = _cli(capsys, monkeypatch, "rollout", "shadow", "3", "--json")
    assert code == 0 and json.loads(out)["mode"] == "shadow" and json.loads(out)["percent"] == 100.0
    code, out, err = _cli(capsys, monkeypatch, "rollout", "promote", "--reason", "shadow looked fine")
    assert code == 0, err
    assert "production: v1 → v3; rollout off" in out
    assert resolve_alias(ws, "production") == 3 and current_rollout(ws).mode == "off"
    code, _, err = _cli(capsys, monkeypatch, "rollout", "canary", "3")  # candidate = production now
    assert code == 2 and "v3 is the production model" in err
    code, _, err = _cli(capsys, monkeypatch, "rollout", "rollback", "--url", "http://127.0.0.1:9")
    assert code == 2 and "cannot roll back through the server" in err


def test_a_rollout_needs_a_candidate_other_than_production(ws: Workspace) -> None:
    from visionloop.errors import ModelNotFoundError, UsageError
    from visionloop.serve.rollout_state import set_rollout

    _production(ws, 1)
    with pytest.raises(ModelNotFoundError) as err:
        set_rollout(ws, "canary", 20, actor=None, reason=None)
    assert err.value.what == "a canary needs a candidate, and alias 'candidate' names no model version"
    assert err.value.fix == "start it with `visionloop rollout canary VERSION`"
    promote(ws, 1, "candidate", actor=None, reason=None)
    with pytest.raises(UsageError, match="names v1, which production already serves"):
        set_rollout(ws, "shadow", 100, actor=None, reason=None)
    assert current_rollout(ws).id is None


class _BlockedSession:
    """An ONNX Runtime session stand-in that answers one box once ``go`` is set."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.calls = 0

    def get_inputs(self) -> list[Any]:
        from types import SimpleNamespace

        return [SimpleNamespace(name="images")]

    def run(self, _: Any, feeds: dict[str, Any]) -> list[Any]:
        import numpy as np

        self.calls += 1
        assert self.go.wait(30)
        return [
            np.array([[0, 0, 40, 40]], np.float32),
            np.array([0.9], np.float32),
            np.array([1], np.int64),
        ]  # class 0 (labels count from 1)


def test_a_slow_candidate_never_slows_production(ws: Workspace, serve: Callable[..., Served]) -> None:
    """While the candidate is stuck, production answers at once; two copies wait, the rest are skipped."""
    from types import SimpleNamespace

    from visionloop.serve.model import Loaded

    production = load(prepare_bundle(ws, 1, bundle_cache(ws)))
    session = _BlockedSession()
    stuck = Loaded(
        SimpleNamespace(version=9, classes=["disc"], manifest={"score_threshold": 0.5}), session, 96
    )  # type: ignore[arg-type]
    control = RolloutControl(Holder(production), candidate=stuck, rollout=Rollout("shadow", 100))
    observed: list[Observation] = []
    server = serve(holder=control.production, control=control, observer=observed.append, shadow_in_flight=2)
    t0 = time.monotonic()
    assert [server.detect()[1:] for _ in range(6)] == [("production", 1)] * 6
    assert time.monotonic() - t0 < 10
    counts = control.status()["counts"]
    assert counts["shadow_skipped"] == 4 and counts["shadow"] == 0
    session.go.set()
    _wait(lambda: control.status()["counts"]["shadow"] == 2, "the two shadow copies")
    _wait(lambda: len([o for o in observed if o.route == "shadow"]) == 2, "the shadow observations")
    assert session.calls == 2
    assert [(o.model_version, len(o.detections)) for o in observed if o.route == "shadow"] == [(9, 1), (9, 1)]
