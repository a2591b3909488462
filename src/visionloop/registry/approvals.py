"""A person's decision on a model version: approve (then it may be promoted) or reject.

Each decision records who, when and why on the model version's row. With
``gates.allow_self_approval = false`` (the default) the person who trained a model
cannot approve it.
"""

from __future__ import annotations

from visionloop.errors import ApprovalError, UsageError
from visionloop.registry.versions import ModelVersion, get_model, set_status
from visionloop.workspace import Workspace

REJECTABLE = ("registered", "gate_failed", "awaiting_approval", "approved")


def _person_and_reason(by: str, reason: str) -> tuple[str, str]:
    by, reason = (by or "").strip(), (reason or "").strip()
    if not by or not reason:
        raise UsageError("a decision needs who made it and why", fix="pass --by NAME and --reason TEXT")
    return by, reason


def approve(ws: Workspace, version: int | str, *, by: str, reason: str) -> ModelVersion:
    """Approve a version that passed its gate and awaits approval; it becomes ``approved``."""
    by, reason = _person_and_reason(by, reason)
    model = get_model(ws, version)
    v = model.version
    if model.status != "awaiting_approval":
        fixes = {
            "registered": f"gate it first with `visionloop model gate {v}`",
            "gate_failed": f"it failed its gate; see `visionloop model show {v}`",
            "approved": "it is already approved; promote it with `visionloop model promote`",
            "rejected": "a rejected version stays rejected; register a new one",
        }
        raise ApprovalError(
            f"model version {v} is `{model.status}`: only a version `awaiting_approval` can be approved",
            where=str(ws.root),
            fix=fixes.get(model.status, f"see `visionloop model show {v}`"),
        )
    if model.created_by and by == model.created_by and not ws.settings.gates.allow_self_approval:
        raise ApprovalError(
            f"{by} trained model version {v} and cannot approve it too",
            where="gates.allow_self_approval = false",
            fix="ask someone else to approve it",
        )
    return set_status(ws, v, "approved", expected=("awaiting_approval",), decided_by=by, reason=reason)


def reject(ws: Workspace, version: int | str, *, by: str, reason: str) -> ModelVersion:
    """Reject a version for good: it becomes ``rejected`` and can no longer be promoted or gated."""
    by, reason = _person_and_reason(by, reason)
    model = get_model(ws, version)
    if model.status not in REJECTABLE:
        raise ApprovalError(
            f"model version {model.version} is already `{model.status}`",
            where=str(ws.root),
            fix=f"see `visionloop model show {model.version}`",
        )
    return set_status(ws, model.version, "rejected", expected=REJECTABLE, decided_by=by, reason=reason)
