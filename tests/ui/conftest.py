"""A dashboard workspace with data on every page (no training: rows written through the registry
and pipeline APIs), users of every role, and signed-in test clients."""

from __future__ import annotations

import io
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("jinja2", reason="the dashboard needs the `ui` extra")

from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import insert, select, update

from _helpers import jpeg, write
from visionloop.data import labels as labelset
from visionloop.data.ingest import import_dataset
from visionloop.data.versions import snapshot
from visionloop.pipeline.runs import create_run, finish_run, finish_step, start_step
from visionloop.pipeline.triggers import Trigger
from visionloop.registry.aliases import promote
from visionloop.registry.versions import register_model, set_gate_report
from visionloop.store import schema
from visionloop.ui.access import SESSION_COOKIE
from visionloop.ui.app import create_app
from visionloop.ui.auth import ROLES, User, create_session, create_user
from visionloop.workspace import Workspace, init_workspace, utcnow

PASSWORD = "correct horse battery"
SCRIPT = "<script>alert(1)</script>"
IMG_TAG = '"><img src=x onerror=alert(1)>'


@dataclass
class Seed:
    """What the seeded workspace holds (ids to put into URLs)."""

    ws: Workspace
    users: dict[str, User]
    dataset: str
    image_oid: str
    awaiting: int  # a model version awaiting approval, trained by "trainer"
    production: int
    pipeline_run: int
    tasks: list[int]
    started: list[str]  # actors the fake pipeline starter was called for


def _png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (10, 120, 200)).save(buf, "PNG")
    return buf.getvalue()


def _model(ws: Workspace, dataset: str, created_by: str, status: str) -> int:
    now = utcnow()
    with ws.engine.begin() as conn:
        res = conn.execute(
            insert(schema.runs).values(
                kind="train",
                status="finished",
                dataset_version_id=dataset,
                config={"model": "ssdlite", "epochs": 1},
                environment={},
                metrics={},
                artifacts={},
                created_at=now,
                finished_at=now,
            )
        )
        run_id = int(res.inserted_primary_key[0])  # type: ignore[index]
    png = ws.blobs.put_bytes(_png())
    weights = ws.blobs.put_bytes(f"weights of run {run_id}".encode())
    ws.blobs.flush()
    classes = ws.classes()
    version = register_model(
        ws,
        run_id=run_id,
        dataset_version_id=dataset,
        architecture="ssdlite",
        weights_oid=weights,
        classes=classes,
        imgsz=64,
        metrics={
            "map50_95": 0.41,
            "map50": 0.7,
            "per_class": {c: {"ap": 0.4, "ap50": 0.6, "recall": 0.5, "n_gt": 3} for c in classes},
        },
        artifacts={"pr_curves.png": png, "confusion_matrix.png": png},
        lineage={"dataset_version": dataset, "run": run_id},
        created_by=created_by,
    )
    checks = [{"name": "min_map", "value": 0.41, "threshold": 0.1, "status": "pass", "detail": "0.41 ≥ 0.1"}]
    set_gate_report(ws, version, {"checks": checks, "passed": True, "complete": True}, status=status)
    return version


def _task(ws: Workspace, oid: str, version: int, classes: list[str], priority: float) -> int:
    """A pending review task as auto-annotation leaves it (proposal revision, item ``proposed``)."""
    now = utcnow()
    proposal = [{"class": classes[0], "box": [4.0, 4.0, 30.0, 24.0], "score": 0.42}]
    boxes = [(4.0, 4.0, 30.0, 24.0, classes[0], False)]
    with ws.engine.begin() as conn:
        row = labelset.row(oid, boxes, now, origin=f"model:{version}")
        lid = int(conn.execute(insert(schema.labels).returning(schema.labels.c.id), [row]).scalar_one())
        conn.execute(
            update(schema.items)
            .where(schema.items.c.image_oid == oid)
            .values(labels_id=lid, status="proposed", updated_at=now)
        )
        res = conn.execute(
            insert(schema.review_tasks).values(
                image_oid=oid,
                proposal_id=lid,
                model_version=version,
                priority=priority,
                reasons={"band_share": 1.0, "proposal": proposal},
                status="pending",
                created_at=now,
            )
        )
        return int(res.inserted_primary_key[0])  # type: ignore[index]


def seed_workspace(ws: Workspace, labeled: Path, tmp: Path, *, evil: bool = False) -> Seed:
    """Import ``labeled`` (YOLO), snapshot it, add unlabeled images, two model versions (one awaiting
    approval by ``trainer``, one in production), a failed pipeline run, review tasks and users.

    With ``evil``, a class name, a file name, a reviewer, a user and an error message carry HTML."""
    import_dataset(ws, labeled)
    if evil:
        ws.add_classes([SCRIPT])
    dataset = snapshot(ws, f"first {SCRIPT}" if evil else "first")[0].id
    plain = tmp / "plain"
    names = [f"{IMG_TAG}.jpg", f"{SCRIPT.replace('/', '|')}.jpg"] if evil else ["a.jpg", "b.jpg"]
    for i, name in enumerate([*names, "c.jpg"]):
        write(plain / name, jpeg(100 + i, (64, 48)))
    import_dataset(ws, plain)
    awaiting = _model(ws, dataset, "trainer", "awaiting_approval")
    production = _model(ws, dataset, "trainer", "approved")
    promote(ws, production, actor=SCRIPT if evil else "boss", reason=IMG_TAG if evil else "first")
    run_id = create_run(ws, Trigger("manual", "manual:seed", {"why": IMG_TAG if evil else "seed"}), "tester")
    assert run_id is not None
    step = start_step(ws, run_id, 1, "snapshot", "0" * 64)
    finish_step(ws, step, "done", 0.25, {"dataset": dataset})
    step = start_step(ws, run_id, 1, "train", "1" * 64)
    finish_step(ws, step, "failed", 1.5, {}, f"DataError: bad {SCRIPT}" if evil else "DataError: bad data")
    finish_run(ws, run_id, "failed", error=f"train failed {IMG_TAG}" if evil else "train failed")
    with ws.engine.connect() as conn:
        unlabeled = list(
            conn.execute(
                select(schema.items.c.image_oid)
                .where(schema.items.c.status == "unlabeled")
                .order_by(schema.items.c.name)
            ).scalars()
        )
    classes = ws.classes()
    if evil:
        classes = [SCRIPT, *classes]
    tasks = [_task(ws, oid, production, classes, 1.0 - i / 10) for i, oid in enumerate(unlabeled)]
    users = {role: create_user(ws, f"{role}-user", role, PASSWORD) for role in ROLES}
    users["trainer"] = create_user(ws, "trainer", "approver", PASSWORD)
    if evil:
        users["evil"] = create_user(ws, SCRIPT, "admin", PASSWORD)
    return Seed(ws, users, dataset, unlabeled[0], awaiting, production, run_id, tasks, [])


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory, synth_day: Path) -> Iterator[Seed]:
    """One seeded workspace for a test module (tests may change it: check only what they own)."""
    base = tmp_path_factory.mktemp("ui")
    labeled = base / "day"
    shutil.copytree(synth_day, labeled)
    ws = init_workspace(base / "project")
    seed = seed_workspace(ws, labeled, base)
    yield seed
    ws.close()


def client_for(seed: Seed, user: User | None) -> TestClient:
    """A test client (no redirects followed) signed in as ``user`` through a real session, with
    its CSRF token in ``client.csrf``."""
    app = create_app(seed.ws, start_pipeline=lambda _ws, actor: seed.started.append(actor))
    client = TestClient(app, follow_redirects=False)
    client.csrf = ""  # type: ignore[attr-defined]
    if user is not None:
        session_id, csrf = create_session(seed.ws, user)
        client.cookies.set(SESSION_COOKIE, session_id)
        client.csrf = csrf  # type: ignore[attr-defined]
    return client


def sign_in(client: TestClient, name: str, password: str = PASSWORD, next_url: str = "/") -> Any:
    """Sign in through the form (with the sign-in page's own token), as a browser does."""
    form = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
    assert token, form.text
    return client.post(
        "/login", data={"name": name, "password": password, "csrf_token": token.group(1), "next": next_url}
    )
