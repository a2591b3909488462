from __future__ import annotations

import itertools
import threading

import pytest

from visionloop.errors import PromotionError, UsageError
from visionloop.registry.aliases import (
    alias_history,
    aliases_of,
    promote,
    resolve_alias,
    rollback,
    serving_stack,
)
from visionloop.registry.versions import set_gate_report, set_status


def approved(models, n: int) -> list[int]:
    out = []
    for _ in range(n):
        v = models()
        set_status(models.ws, v, "approved")
        out.append(v)
    return out


def moves(ws, alias: str = "production") -> list[tuple[str, int | None, int, str | None]]:
    return [(e.action, e.from_version, e.to_version, e.reason) for e in alias_history(ws, alias)]


def test_history_tells_what_served_when(any_models) -> None:
    ws = any_models.ws
    v1, v2, v3 = approved(any_models, 3)
    e1 = promote(ws, v1, actor="ann", reason="first model")
    promote(ws, v2, actor="bob", reason="better")
    promote(ws, v3, actor="ci", reason="nightly")
    back = rollback(ws, actor="ann", reason="v3 misses triangles")
    assert (back.action, back.from_version, back.to_version, back.actor) == ("rollback", 3, 2, "ann")
    assert moves(ws) == [
        ("promote", None, 1, "first model"),
        ("promote", 1, 2, "better"),
        ("promote", 2, 3, "nightly"),
        ("rollback", 3, 2, "v3 misses triangles"),
    ]
    history = alias_history(ws, "production")
    assert history[0] == e1 and [e.actor for e in history] == ["ann", "bob", "ci", "ann"]
    times = [e.created_at for e in history]
    assert times == sorted(times) and all(t.tzinfo is not None for t in times)
    assert resolve_alias(ws, "production") == 2 and aliases_of(ws, 2) == ["production"]
    assert resolve_alias(ws, "candidate") is None and aliases_of(ws, 3) == []


def test_rolling_back_twice_goes_further_back_then_stops(models) -> None:
    ws = models.ws
    for v in approved(models, 3):
        promote(ws, v, actor="ci", reason=None)
    assert rollback(ws, actor="ann", reason="a").to_version == 2
    assert rollback(ws, actor="ann", reason="b").to_version == 1
    with pytest.raises(PromotionError) as e:
        rollback(ws, actor="ann", reason="c")
    assert e.value.what == "alias 'production' has nothing to roll back to: version 1 is the first it named"
    assert "visionloop model history --alias production" in (e.value.fix or "")
    assert resolve_alias(ws, "production") == 1


def test_nothing_to_roll_back_on_an_unused_alias(models) -> None:
    with pytest.raises(PromotionError) as e:
        rollback(models.ws, "candidate", actor="ann", reason=None)
    assert e.value.what == "alias 'candidate' has nothing to roll back to: it names no model version"


def test_rollback_after_a_new_promote_returns_to_what_served_before_it(models) -> None:
    ws = models.ws
    v1, v2, v3 = approved(models, 3)
    promote(ws, v1, actor=None, reason=None)
    promote(ws, v2, actor=None, reason=None)
    rollback(ws, actor=None, reason=None)
    promote(ws, v3, actor=None, reason=None)
    assert rollback(ws, actor=None, reason=None).to_version == v1
    assert serving_stack(alias_history(ws)) == [v1]


def test_history_is_append_only(models) -> None:
    ws = models.ws
    v1, v2 = approved(models, 2)
    promote(ws, v1, actor="a", reason="r1")
    before = [e.to_dict() for e in alias_history(ws)]
    promote(ws, v2, actor="b", reason="r2")
    rollback(ws, actor="c", reason="r3")
    after = [e.to_dict() for e in alias_history(ws)]
    assert after[:1] == before and len(after) == 3


def test_promoting_the_serving_version_again_changes_nothing(models) -> None:
    (v1,) = approved(models, 1)
    first = promote(models.ws, v1, actor="a", reason="r")
    assert promote(models.ws, v1, actor="b", reason="again") == first
    assert len(alias_history(models.ws)) == 1


@pytest.mark.parametrize(
    ("status", "why", "fix"),
    [
        ("registered", "it has not been gated yet", "run `visionloop model gate 1` first"),
        (
            "awaiting_approval",
            "it passed its gate and awaits a person's approval",
            "run `visionloop model approve 1 --by NAME --reason TEXT`",
        ),
        ("gate_failed", "it failed its gate (no_regression)", "see `visionloop model show 1`"),
    ],
)
def test_promote_refuses_a_model_that_is_not_approved(models, status, why, fix) -> None:
    v = models()
    report = {"checks": [{"name": "no_regression", "status": "fail"}], "passed": False, "complete": True}
    set_gate_report(models.ws, v, report, status=status)
    with pytest.raises(PromotionError) as e:
        promote(models.ws, v, actor="ann", reason="ship it")
    assert e.value.what == (
        f"model version 1 is `{status}`, not `approved`, so it cannot become 'production': {why}"
    )
    assert (e.value.fix or "").startswith(fix) and "--force" in (e.value.fix or "")
    assert resolve_alias(models.ws, "production") is None and alias_history(models.ws) == []


def test_force_promotes_anyway_and_says_so_in_the_history(models) -> None:
    v = models()
    e = promote(models.ws, v, "candidate", actor="ann", reason="hotfix", force=True)
    assert e.reason == "forced while `registered`: hotfix"
    assert resolve_alias(models.ws, "candidate") == v


@pytest.mark.parametrize("name", ["v3", "12", "", "-x", "a b"])
def test_alias_names_are_checked(models, name) -> None:
    (v,) = approved(models, 1)
    with pytest.raises(UsageError, match="invalid alias name"):
        promote(models.ws, v, name, actor=None, reason=None)


def test_concurrent_promotes_keep_one_unbroken_history(any_models) -> None:
    """Each move starts from the version the previous move left, whoever made it."""
    ws = any_models.ws
    versions = approved(any_models, 6)
    barrier = threading.Barrier(len(versions))

    def move(v: int) -> None:
        barrier.wait()
        promote(ws, v, actor=f"t{v}", reason=None)

    threads = [threading.Thread(target=move, args=(v,)) for v in versions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    history = alias_history(ws)
    assert sorted(e.to_version for e in history) == versions
    assert history[0].from_version is None
    assert all(b.from_version == a.to_version for a, b in itertools.pairwise(history))
    assert resolve_alias(ws, "production") == history[-1].to_version
