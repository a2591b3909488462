from __future__ import annotations

from sqlalchemy import inspect, select

from visionloop.config import TuneConfig
from visionloop.store import schema
from visionloop.train.tune import tune


def test_tune_records_every_trial_and_registers_the_best(tiny_ws, tiny_cfg) -> None:
    space = TuneConfig(
        lr=(0.005, 0.02), epochs=(1, 2), imgsz=(64, 96), models=("ssdlite",), augment=("light",)
    )
    res = tune(tiny_ws, "latest", 3, base=tiny_cfg, space=space)
    assert len(res.trials) == 3
    with tiny_ws.engine.connect() as conn:
        runs = conn.execute(select(schema.runs)).all()
    trials = [r for r in runs if r.kind == "trial"]
    assert len(trials) == 3 and all(r.parent_id == res.run_id for r in trials)
    assert {r.status for r in trials} <= {"finished", "pruned"}
    assert res.model_version == 1 and res.best_run in {r.id for r in trials}
    assert "studies" in inspect(tiny_ws.engine).get_table_names(), (
        "Optuna stores its study in the workspace DB"
    )
