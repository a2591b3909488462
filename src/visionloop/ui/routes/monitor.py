"""The monitoring page: drift, input and prediction statistics and live accuracy over time, as charts,
and the latest windows as a table (read through ``monitor.report``, as the CLI does)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from visionloop.monitor.report import accuracy_history, latest_windows, signals
from visionloop.ui.charts import line_chart
from visionloop.ui.web import page
from visionloop.workspace import Workspace

router = APIRouter()


@router.get("/monitor")
def monitor(request: Request, last: int = 50) -> Response:
    """Charts over the latest ``last`` windows, the windows table, live accuracy and signals."""
    ws: Workspace = request.app.state.ws
    last = min(max(last, 1), 500)
    windows = latest_windows(ws, last)
    ids = [w.id for w in windows]
    drifted = [w.id for w in windows if w.drifted]
    cfg = ws.settings.monitor

    def ref(name: str) -> list[float | None]:
        return [w.summary.get("reference", {}).get(name) for w in windows]

    charts = [
        line_chart(
            "Embedding drift: MMD p-value per window (red line: α; shaded: drifted)",
            ids,
            [("MMD p-value", [(w.test("embedding") or {}).get("p_value") for w in windows], False)],
            threshold=cfg.alpha,
            log=True,
            marks=drifted,
        ),
        line_chart(
            "Brightness and contrast (dashed: reference)",
            ids,
            [
                ("brightness", [w.stat("brightness") for w in windows], False),
                ("contrast", [w.stat("contrast") for w in windows], False),
                ("brightness, reference", ref("brightness"), True),
                ("contrast, reference", ref("contrast"), True),
            ],
            marks=drifted,
        ),
        line_chart(
            "Boxes per image (dashed: reference)",
            ids,
            [
                ("boxes per image", [w.stat("boxes") for w in windows], False),
                ("reference", ref("boxes"), True),
            ],
            marks=drifted,
        ),
    ]
    acc = accuracy_history(ws, last)
    charts.append(
        line_chart(
            "Live accuracy: mAP50-95 on reviewed production samples (dashed: test)",
            [a.id for a in acc],
            [
                ("live mAP50-95", [a.metrics.get("map50_95") for a in acc], False),
                ("test mAP50-95", [a.metrics.get("test_map50_95") for a in acc], True),
            ],
        )
    )
    return page(
        request,
        "monitor.html",
        charts=charts,
        windows=list(reversed(windows))[:20],
        accuracy=list(reversed(acc))[:10],
        signals=signals(ws, 10),
        last=last,
    )
