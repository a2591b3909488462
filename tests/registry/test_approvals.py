from __future__ import annotations

import pytest

from visionloop.config import GatesConfig
from visionloop.errors import ApprovalError, PromotionError, UsageError
from visionloop.registry.aliases import promote
from visionloop.registry.approvals import approve, reject
from visionloop.registry.versions import get_model, set_status


def awaiting(models, created_by: str | None = "trainer") -> int:
    v = models(created_by=created_by)
    set_status(models.ws, v, "awaiting_approval")
    return v


def test_approve_records_who_when_why_and_allows_promotion(models) -> None:
    v = awaiting(models)
    m = approve(models.ws, v, by="reviewer", reason="checked the night images")
    assert (m.status, m.decided_by, m.decision_reason) == ("approved", "reviewer", "checked the night images")
    assert m.decided_at is not None and m.decided_at >= m.created_at
    assert get_model(models.ws, v) == m
    assert promote(models.ws, v, actor="reviewer", reason="approved").to_version == v


def test_the_trainer_cannot_approve_their_own_model(models) -> None:
    v = awaiting(models, created_by="ann")
    with pytest.raises(ApprovalError) as e:
        approve(models.ws, v, by="ann", reason="looks fine")
    assert e.value.message == (
        "ann trained model version 1 and cannot approve it too. "
        "Where: gates.allow_self_approval = false. Fix: ask someone else to approve it."
    )
    assert get_model(models.ws, v).status == "awaiting_approval"


def test_self_approval_when_allowed(models) -> None:
    models.ws.settings = models.ws.settings.model_copy(
        update={"gates": GatesConfig(allow_self_approval=True)}
    )
    v = awaiting(models, created_by="ann")
    assert approve(models.ws, v, by="ann", reason="solo project").status == "approved"


@pytest.mark.parametrize(
    ("status", "fix"),
    [
        ("registered", "gate it first with `visionloop model gate 1`"),
        ("gate_failed", "it failed its gate; see `visionloop model show 1`"),
        ("approved", "it is already approved; promote it with `visionloop model promote`"),
        ("rejected", "a rejected version stays rejected; register a new one"),
    ],
)
def test_only_a_model_awaiting_approval_can_be_approved(models, status, fix) -> None:
    v = models()
    set_status(models.ws, v, status)
    with pytest.raises(ApprovalError) as e:
        approve(models.ws, v, by="reviewer", reason="ok")
    assert (
        e.value.what == f"model version 1 is `{status}`: only a version `awaiting_approval` can be approved"
    )
    assert e.value.fix == fix
    assert get_model(models.ws, v).status == status


def test_reject_is_final(models) -> None:
    v = awaiting(models)
    m = reject(models.ws, v, by="reviewer", reason="misses small cells")
    assert (m.status, m.decided_by, m.decision_reason) == ("rejected", "reviewer", "misses small cells")
    with pytest.raises(ApprovalError, match="model version 1 is already `rejected`"):
        reject(models.ws, v, by="reviewer", reason="again")
    with pytest.raises(PromotionError, match=r"it was rejected by reviewer \(misses small cells\)"):
        promote(models.ws, v, actor="ci", reason=None)


def test_the_trainer_may_reject_their_own_model(models) -> None:
    v = awaiting(models, created_by="ann")
    assert reject(models.ws, v, by="ann", reason="trained on the wrong split").status == "rejected"


@pytest.mark.parametrize(("by", "reason"), [("", "why"), ("ann", "  "), ("  ", "")])
def test_a_decision_needs_a_person_and_a_reason(models, by, reason) -> None:
    v = awaiting(models)
    with pytest.raises(UsageError, match="a decision needs who made it and why"):
        approve(models.ws, v, by=by, reason=reason)
    with pytest.raises(UsageError):
        reject(models.ws, v, by=by, reason=reason)
