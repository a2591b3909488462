"""The trigger policy is a pure function: table tests, no workspace."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from visionloop.config import RetrainPolicy
from visionloop.errors import ConfigError
from visionloop.pipeline.triggers import LoopState, Trigger, decide, schedule_slot

NOW = datetime(2026, 11, 27, 4, 5, 30, tzinfo=UTC)


def _state(new: int, prod: int | None = 1, dataset: str | None = "a" * 64, labeled: int = 500) -> LoopState:
    return LoopState(prod, dataset, labeled, new)


@pytest.mark.parametrize(
    ("new", "keys"),
    [
        (0, []),
        (99, []),
        (100, ["threshold:aaaaaaaaaaaaaaaa:1"]),
        (199, ["threshold:aaaaaaaaaaaaaaaa:1"]),  # debounced: the same condition until N more arrive
        (200, ["threshold:aaaaaaaaaaaaaaaa:2"]),
    ],
)
def test_threshold_fires_once_per_n_new_items(new: int, keys: list[str]) -> None:
    got = decide(_state(new), RetrainPolicy(min_new_items=100), NOW)
    assert [t.key for t in got] == keys
    for t in got:
        assert t.kind == "threshold" and t.detail["new_items"] == new and t.detail["production_version"] == 1


def test_threshold_key_changes_with_the_production_dataset() -> None:
    a = decide(_state(150, dataset="a" * 64), RetrainPolicy(min_new_items=100), NOW)
    b = decide(_state(150, prod=2, dataset="b" * 64), RetrainPolicy(min_new_items=100), NOW)
    assert a[0].key != b[0].key


def test_first_model_is_trained_when_enough_labeled_data_exists() -> None:
    got = decide(_state(120, prod=None, dataset=None), RetrainPolicy(min_new_items=100), NOW)
    assert [t.key for t in got] == ["threshold:none:1"]


@pytest.mark.parametrize(
    ("cron", "slot"),
    [
        ("0 3 * * *", datetime(2026, 11, 27, 3, 0, tzinfo=UTC)),
        ("*/5 * * * *", datetime(2026, 11, 27, 4, 5, tzinfo=UTC)),  # this minute's slot counts
        ("0 0 1 1 *", datetime(2026, 1, 1, 0, 0, tzinfo=UTC)),
    ],
)
def test_schedule_slot_is_the_latest_at_or_before_now(cron: str, slot: datetime) -> None:
    assert schedule_slot(cron, NOW) == slot


def test_schedule_fires_once_per_slot_and_not_for_slots_before_since() -> None:
    policy = RetrainPolicy(min_new_items=100, schedule="0 * * * *")
    got = decide(_state(0), policy, NOW)
    assert [t.key for t in got] == ["schedule:2026-11-27T04:00:00+00:00"]
    assert decide(_state(0), policy, NOW.replace(minute=59)) == got  # same slot, same key
    assert decide(_state(0), policy, NOW, since=NOW) == []  # slot before the agent started
    assert decide(_state(0, labeled=0), policy, NOW) == []  # nothing to train on


def test_monitoring_signals_pass_through_with_their_keys() -> None:
    drift = Trigger("drift", "drift:window-12", {"psi": 0.4})
    state = LoopState(1, "a" * 64, 10, 0, (drift, Trigger("manual", "m:1")))
    assert decide(state, RetrainPolicy(), NOW) == [drift]


def test_a_bad_cron_expression_is_a_config_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from visionloop.config import load_settings

    cfg = tmp_path / "visionloop.toml"
    cfg.write_text('[policies.retrain]\nschedule = "every day"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"policies\.retrain\.schedule"):
        load_settings(cfg)


def test_per_class_minimums_hold_back_the_threshold() -> None:
    policy = RetrainPolicy(min_new_items=100, min_new_per_class={"Platelets": 20})
    few = LoopState(1, "a" * 64, 500, 150, (), {"RBC": 900, "Platelets": 19})
    enough = LoopState(1, "a" * 64, 500, 150, (), {"RBC": 900, "Platelets": 20})
    assert decide(few, policy, NOW) == []
    [t] = decide(enough, policy, NOW)
    assert t.kind == "threshold" and t.detail["new_boxes_per_class"]["Platelets"] == 20
