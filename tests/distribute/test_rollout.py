"""Staged rollout buckets and the walk down a channel's history (pure)."""

from __future__ import annotations

from dataclasses import dataclass

from visionloop.distribute.rollout import release_for_device, stable_bucket

DEVICES = [f"device-{i}" for i in range(1000)]


@dataclass(frozen=True)
class Rel:
    channel: str
    sequence: int
    rollout_percent: int
    previous: Rel | None = None


def test_twenty_percent_of_a_thousand_devices_within_four_points() -> None:
    share = sum(stable_bucket(d, "stable", 2) < 20 for d in DEVICES) / len(DEVICES)
    assert 0.16 <= share <= 0.24, share


def test_buckets_are_stable_and_depend_on_the_release() -> None:
    first = [stable_bucket(d, "stable", 2) for d in DEVICES]
    assert first == [stable_bucket(d, "stable", 2) for d in DEVICES]
    assert all(0 <= b < 100 for b in first)
    assert first != [stable_bucket(d, "stable", 3) for d in DEVICES]
    assert first != [stable_bucket(d, "beta", 2) for d in DEVICES]


def test_release_for_device_walks_back_outside_the_rollout() -> None:
    base = Rel("stable", 1, 100)
    staged = Rel("stable", 2, 20, base)
    got = [release_for_device(staged, d, lambda r: r.previous) for d in DEVICES]
    assert {id(r) for r in got} == {id(base), id(staged)}
    inside = [d for d, r in zip(DEVICES, got, strict=True) if r is staged]
    assert all(stable_bucket(d, "stable", 2) < 20 for d in inside)
    assert 160 <= len(inside) <= 240
    # no device id: only fully rolled-out releases
    assert release_for_device(staged, None, lambda r: r.previous) is base
    # a staged first release: devices outside it get nothing
    lone = Rel("stable", 1, 50)
    assert release_for_device(lone, None, lambda r: r.previous) is None
    assert release_for_device(Rel("stable", 1, 100), "x", lambda r: r.previous) is not None
