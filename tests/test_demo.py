"""`make demo` end to end: the loop closes on its own and v2 beats v1 on the shifted domain."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the demo trains: needs the `train` extra")
pytest.importorskip("uvicorn", reason="the demo serves: needs the `serve` extra")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_closes_the_loop(tmp_path: Path) -> None:
    from visionloop.demo import run

    result = run(tmp_path)
    assert result["ok"]
    v1, v2 = result["v1"], result["v2"]
    assert v2 == v1 + 1
    assert result["scores"][v2]["night"] > result["scores"][v1]["night"]
