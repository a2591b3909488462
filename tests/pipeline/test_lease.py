"""The pipeline lock: one holder at a time, on SQLite and PostgreSQL, even under a race."""

from __future__ import annotations

import threading
import time

from visionloop.pipeline.lease import Lease, acquire, holder, release
from visionloop.workspace import Workspace


def test_one_holder_renewal_release_and_expiry(any_ws: Workspace) -> None:
    assert acquire(any_ws, "pipeline", "a", 60)
    assert not acquire(any_ws, "pipeline", "b", 60)
    assert acquire(any_ws, "pipeline", "a", 60)  # the holder renews
    assert holder(any_ws, "pipeline") == "a"
    release(any_ws, "pipeline", "b")  # not b's to release
    assert holder(any_ws, "pipeline") == "a"
    release(any_ws, "pipeline", "a")
    assert holder(any_ws, "pipeline") is None
    assert acquire(any_ws, "pipeline", "b", 0.2)
    time.sleep(0.4)  # b vanished: its lease expires
    assert holder(any_ws, "pipeline") is None
    assert acquire(any_ws, "pipeline", "c", 60)


def test_racing_owners_get_exactly_one_lease(any_ws: Workspace) -> None:
    wins: list[str] = []
    go = threading.Barrier(8)

    def contend(i: int) -> None:
        go.wait()
        if acquire(any_ws, "race", f"owner-{i}", 60):
            wins.append(f"owner-{i}")

    threads = [threading.Thread(target=contend, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and holder(any_ws, "race") == wins[0]


def test_a_held_lease_is_renewed_by_its_heartbeat(any_ws: Workspace) -> None:
    with Lease(any_ws, "pipeline", "a", 0.6) as lease:
        assert lease.held
        time.sleep(1.0)  # past the ttl: only the heartbeat keeps it
        assert holder(any_ws, "pipeline") == "a" and lease.held
        with Lease(any_ws, "pipeline", "b", 0.6) as other:
            assert not other.held
    assert holder(any_ws, "pipeline") is None
