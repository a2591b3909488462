"""Staged rollout (pure): which release of a channel a device gets.

A device's bucket for a release is a number in [0, 100) drawn from the sha256 of the channel,
the release's sequence and the device id: the same device always lands in the same bucket for
the same release, and the buckets of many devices are spread evenly. A device whose bucket is
below the release's rollout percent gets it; any other device gets what it would get from the
release before (and so on down the channel's history).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Protocol, TypeVar


def stable_bucket(device_id: str, channel: str, sequence: int) -> float:
    """The device's bucket for one release: a float in [0, 100), stable per (device, channel, sequence)."""
    digest = hashlib.sha256(f"{channel}\x00{sequence}\x00{device_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 * 100.0


class Staged(Protocol):
    """What rollout needs to know of a release."""

    @property
    def channel(self) -> str: ...

    @property
    def sequence(self) -> int: ...

    @property
    def rollout_percent(self) -> int: ...


R = TypeVar("R", bound=Staged)


def release_for_device(head: R | None, device_id: str | None, previous: Callable[[R], R | None]) -> R | None:
    """The release of a channel that ``device_id`` gets, starting from the channel's ``head``.

    ``previous`` gives the release a release replaced. A device without an id gets only fully
    rolled-out releases. None: no release of the channel is meant for this device."""
    release = head
    while release is not None:
        if release.rollout_percent >= 100:
            return release
        if (
            device_id
            and stable_bucket(device_id, release.channel, release.sequence) < release.rollout_percent
        ):
            return release
        release = previous(release)
    return None
