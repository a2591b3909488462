"""Auto-annotation: the real production model's proposals, idempotence, auto-accept, errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from review.conftest import TABLE, make_queue_ws, mirror
from visionloop.data.versions import snapshot
from visionloop.errors import ModelNotFoundError, UsageError
from visionloop.review.autolabel import autolabel, class_frequency, propose
from visionloop.review.queue import list_tasks, queue_stats
from visionloop.review.routing import RoutingPolicy
from visionloop.serve.model import decode
from visionloop.store import schema
from visionloop.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]


def _rows(ws: Workspace, table: Any, *where: Any) -> list[Any]:
    with ws.engine.connect() as conn:
        return list(conn.execute(select(table).where(*where)))


def test_production_model_proposes_on_unlabeled_images(prod_ws: Workspace) -> None:
    labeled_before, _ = snapshot(prod_ws, "before")
    ticks: list[Any] = []
    res = autolabel(prod_ws, min_score=0.3, progress=lambda n=1, total=None: ticks.append(total or n))
    assert ticks == [6, 1, 1, 1, 1, 1, 1]
    assert (res.model_version, res.candidates, res.proposed, res.tasks_created, res.auto_accepted) == (
        1,
        6,
        6,
        6,
        0,
    )
    assert res.boxes > 0 and res.failed == []

    items = _rows(prod_ws, schema.items, schema.items.c.status == "proposed")
    assert len(items) == 6
    tasks = list_tasks(prod_ws)
    assert len(tasks) == 6 and {t.status for t in tasks} == {"pending"}
    assert sum(len(t.proposal) for t in tasks) == res.boxes
    for item in items:
        (label,) = _rows(prod_ws, schema.labels, schema.labels.c.id == item.labels_id)
        assert (label.origin, label.author, label.parent_id) == ("model:1", None, None)
        (task,) = [t for t in tasks if t.image_oid == item.image_oid]
        assert label.n_boxes == len(task.proposal)
        assert all(p["score"] >= 0.3 and 0 <= p["box"][0] < p["box"][2] <= 64 for p in task.proposal)
        assert set(task.reasons) >= {
            "balance",
            "ambiguous",
            "uncertainty",
            "disagreement",
            "rarity",
            "auto_accept",
        }
        parts = task.reasons
        weighted = parts["balance"] + 0.25 * (
            parts["ambiguous"] + parts["uncertainty"] + parts["disagreement"]
        )
        assert task.priority == pytest.approx(weighted, abs=1e-5)
    # proposals are not labeled data: a snapshot does not change
    after, created = snapshot(prod_ws, "after")
    assert not created and after.id == labeled_before.id

    again = autolabel(prod_ws, min_score=0.3)
    assert (again.candidates, again.proposed, again.boxes) == (0, 0, 0)
    assert (
        len(list_tasks(prod_ws)) == 6
        and len(_rows(prod_ws, schema.labels, schema.labels.c.origin == "model:1")) == 6
    )


def test_limit_and_the_bundles_threshold(prod_ws: Workspace) -> None:
    first = autolabel(prod_ws, limit=2)
    assert (first.candidates, first.proposed, first.min_score) == (2, 2, 0.25)  # the bundle's threshold
    rest = autolabel(prod_ws)
    assert (rest.candidates, rest.proposed) == (4, 4)
    assert queue_stats(prod_ws)["pending"] == 6


def test_alias_naming_nothing_is_a_clear_error(prod_ws: Workspace) -> None:
    with pytest.raises(ModelNotFoundError) as exc:
        autolabel(prod_ws, alias="staging")
    assert exc.value.what == "alias 'staging' names no model version, so there is no model to propose labels"
    assert "visionloop model promote V --alias staging" in (exc.value.fix or "")
    with pytest.raises(UsageError, match="--limit 0 is not a positive number"):
        autolabel(prod_ws, limit=0)
    with pytest.raises(UsageError, match=r"auto-accept bound 2\.0 is outside"):
        autolabel(prod_ws, auto_accept=2.0)


def test_auto_accept_labels_confident_agreeing_images(tmp_path: Path) -> None:
    ws, paths, det = make_queue_ws(tmp_path)
    with ws:
        # image 3's box is found again on the mirror, but elsewhere: no agreement
        img3 = decode(paths[3].read_bytes())
        det.add(img3, TABLE[3], flipped=mirror([{**TABLE[3][0], "box": [0.0, 0.0, 10.0, 10.0]}], 64))
        res = propose(ws, 5, det, min_score=0.25, policy=RoutingPolicy(auto_accept=0.6))
        assert (res.proposed, res.auto_accepted, res.tasks_created) == (4, 1, 3)
        (auto,) = list_tasks(ws, status="auto_accepted")
        assert auto.proposal == TABLE[0] and auto.decided_by == "auto:model:5"
        assert auto.reasons["auto_accept"] is True and auto.reasons["unmatched"] == 0
        (item,) = _rows(ws, schema.items, schema.items.c.image_oid == auto.image_oid)
        (accepted,) = _rows(ws, schema.labels, schema.labels.c.id == item.labels_id)
        (proposal,) = _rows(ws, schema.labels, schema.labels.c.id == accepted.parent_id)
        assert item.status == "labeled"
        assert (accepted.origin, accepted.author) == ("auto:model:5", None)
        assert proposal.origin == "model:5" and proposal.oid == accepted.oid
        t3 = next(t for t in list_tasks(ws) if t.proposal == TABLE[3])
        assert (
            t3.status == "pending" and t3.reasons["disagreement"] == 1.0
        )  # confident, but the mirror disagrees
        assert snapshot(ws, "auto")[0].n_images == 1
        assert class_frequency(ws) == {"disc": 1}


def test_proposed_items_are_not_proposed_again(tmp_path: Path) -> None:
    ws, _, det = make_queue_ws(tmp_path)
    with ws:
        propose(ws, 3, det, min_score=0.25)
        calls = det.calls
        assert propose(ws, 3, det).candidates == 0 and det.calls == calls  # not even run again
        assert propose(ws, 4, det).candidates == 0  # proposed items are no longer unlabeled


def test_a_missing_image_blob_is_reported_and_the_rest_proposed(tmp_path: Path) -> None:
    ws, _, det = make_queue_ws(tmp_path)
    with ws:
        oid = next(r.image_oid for r in _rows(ws, schema.items, schema.items.c.name == "scene2.png"))
        ws.blobs.path(oid).unlink()
        res = propose(ws, 3, det, min_score=0.25)
        assert res.proposed == 3 and len(res.failed) == 1
        assert res.failed[0]["name"] == "scene2.png" and "is missing" in res.failed[0]["error"]
        (item,) = _rows(ws, schema.items, schema.items.c.image_oid == oid)
        assert item.status == "unlabeled"  # nothing lost: it is proposed once the blob is back


def test_review_modules_do_not_import_torch() -> None:
    code = (
        "import sys; import visionloop.review.autolabel, visionloop.review.queue, visionloop.review.exchange, "
        "visionloop.cli_review; bad = [m for m in ('torch', 'torchvision') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
