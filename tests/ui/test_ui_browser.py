"""The dashboard in a real browser (Debian's chromium through Playwright) over a real workspace: a
tiny model trained, gated, exported and promoted by the pipeline, unlabeled images proposed by it.

Screenshots of every page land in ``test-artifacts/ui/``."""

from __future__ import annotations

import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("playwright", reason="the browser tests need playwright (the `dev` extra)")
pytest.importorskip("torch", reason="the browser tests train a tiny model: needs the `train` extra")

import uvicorn
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from sqlalchemy import select

from pipeline.conftest import make_loop_ws
from ui.conftest import PASSWORD
from visionloop.data.ingest import import_dataset
from visionloop.data.synth import generate
from visionloop.pipeline.runner import run_pipeline
from visionloop.review.autolabel import autolabel
from visionloop.review.queue import get_task
from visionloop.store import schema
from visionloop.ui.app import create_app
from visionloop.ui.auth import create_user
from visionloop.workspace import Workspace

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is absent: install Debian's chromium (`make unit` does) to run the browser tests",
        allow_module_level=True,
    )
ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "test-artifacts" / "ui"


@dataclass
class Live:
    ws: Workspace
    url: str
    dataset: str
    model: int
    run: int


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    base = tmp_path_factory.mktemp("browser")
    generate(base / "day", images=24, seed=7, size=64)
    ws = make_loop_ws(base / "project")
    import_dataset(ws, base / "day")
    run = run_pipeline(ws, actor="trainer")
    assert run.status == "succeeded" and run.outputs["promoted"], run.error
    generate(base / "more", images=6, seed=9, size=64)
    plain = base / "new"
    plain.mkdir()
    for path in sorted((base / "more" / "images").rglob("*.jpg")):
        shutil.copy(path, plain / path.name)
    import_dataset(ws, plain)
    result = autolabel(ws, min_score=0.05, max_boxes=5)
    assert result.tasks_created == 6, result
    create_user(ws, "rita", "annotator", PASSWORD)
    create_user(ws, "adam", "admin", PASSWORD)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(ws), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the dashboard did not start"
        time.sleep(0.05)
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield Live(ws, f"http://127.0.0.1:{port}", run.outputs["dataset"], run.outputs["model_version"], run.id)
    server.should_exit = True
    thread.join(10)
    ws.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"])
        yield b
        b.close()


def _signed_in(browser: Browser, live: Live, name: str) -> BrowserContext:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(f"{live.url}/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{live.url}/")
    page.close()
    return context


@pytest.fixture(scope="module")
def admin(browser: Browser, live: Live) -> Iterator[BrowserContext]:
    context = _signed_in(browser, live, "adam")
    yield context
    context.close()


def _watch(page: Page) -> list[str]:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: problems.append(f"dialog: {d.message}"))
    return problems


def _to_screen(page: Page, task: dict[str, Any]) -> Any:
    r = page.locator("#overlay").bounding_box()
    assert r is not None
    sx, sy = r["width"] / task["width"], r["height"] / task["height"]
    return lambda x, y: (r["x"] + x * sx, r["y"] + y * sy)


def test_review_an_image_in_the_browser(browser: Browser, live: Live) -> None:
    context = _signed_in(browser, live, "rita")
    page = context.new_page()
    problems = _watch(page)
    page.goto(f"{live.url}/review")
    page.wait_for_selector("#review[data-state=ready]")
    assert page.locator("#left").text_content() == "6 left"
    task_id = int(page.get_attribute("#review", "data-task-id") or 0)
    task = get_task(live.ws, task_id).to_dict()
    assert int(page.get_attribute("#review", "data-boxes") or -1) == len(task["proposal"])
    page.screenshot(path=str(SHOTS / "review.png"))

    # delete the proposed boxes (select, Delete), then draw one, move it and change its class; the
    # last box drawn is the one on top (a later, larger box may cover an earlier one entirely)
    while page.locator("#overlay rect.box").count():
        page.locator("#overlay rect.box").last.click()
        page.keyboard.press("Delete")
    at = _to_screen(page, task)
    page.mouse.move(*at(8, 8))
    page.mouse.down()
    page.mouse.move(*at(28, 30), steps=6)
    page.mouse.up()
    assert page.locator("#overlay rect.box").count() == 1
    page.mouse.move(*at(18, 19))
    page.mouse.down()
    page.mouse.move(*at(28, 25), steps=6)
    page.mouse.up()
    classes = live.ws.classes()
    new_class = classes[2]
    page.select_option("#class-select", new_class)
    assert page.locator("#overlay text.label").first.text_content() == new_class
    page.screenshot(path=str(SHOTS / "review-edited.png"))
    page.click("#btn-accept")
    page.wait_for_selector(f"#review[data-state=ready]:not([data-task-id='{task_id}'])")
    assert "Saved (edit)" in (page.locator("#message").text_content() or "")

    decided = get_task(live.ws, task_id)
    assert decided.status == "edited" and decided.decided_by == "rita"
    with live.ws.engine.connect() as conn:
        row = conn.execute(
            select(schema.labels, schema.items.c.status)
            .join(schema.items, schema.items.c.labels_id == schema.labels.c.id)
            .where(schema.items.c.image_oid == decided.image_oid)
        ).one()
    assert (row.origin, row.author, row.status) == ("review", "rita", "labeled")
    (box,) = json.loads(row.boxes)
    assert box["class"] == new_class
    assert box["box"] == pytest.approx([18, 14, 38, 36], abs=1.0)  # drawn at 8,8-28,30, moved by +10,+6

    # keyboard: s skips the next task
    second = int(page.get_attribute("#review", "data-task-id") or 0)
    page.keyboard.press("s")
    page.wait_for_selector(f"#review[data-state=ready]:not([data-task-id='{second}'])")
    assert get_task(live.ws, second).status == "skipped"
    assert page.locator("#left").text_content() == "5 left"  # the skipped task is still left
    assert problems == []
    context.close()


PAGES = [
    ("overview", "/", "h1", None),
    ("review-queue", "/review/queue", "h1", "Review queue"),
    ("datasets", "/datasets", "h1", "Dataset versions"),
    ("dataset", "/datasets/{dataset}", "h2", "Boxes per class"),
    ("dataset-diff", "/datasets/diff", "h1", "Compare dataset versions"),
    ("images", "/images", "h1", "Images"),
    ("images-filtered", "/images?status=proposed", "h1", "Images"),
    ("models", "/models", "h1", "Model versions"),
    ("model", "/models/{model}", "h1", "Model v{model}"),
    ("aliases", "/aliases", "h1", "Aliases"),
    ("pipeline", "/pipeline", "h1", "Pipeline runs"),
    ("pipeline-run", "/pipeline/{run}", "h1", "Pipeline run {run}"),
    ("users", "/users", "h1", "Users"),
    ("account", "/account", "h1", "adam"),
]


@pytest.mark.parametrize(("name", "path", "heading", "text"), PAGES, ids=[p[0] for p in PAGES])
def test_page_renders_with_real_data(
    admin: BrowserContext, live: Live, name: str, path: str, heading: str, text: str | None
) -> None:
    values = {"dataset": live.dataset, "model": live.model, "run": live.run}
    page = admin.new_page()
    problems = _watch(page)
    response = page.goto(live.url + path.format(**values))
    assert response is not None and response.status == 200
    if text is not None:
        assert text.format(**values) in (page.locator(heading).first.text_content() or "")
    body = page.locator("main").inner_text()
    if name == "model":
        for plot in ("pr_curves.png", "confusion_matrix.png"):
            img = page.locator(f"img[alt='{plot}']")
            img.wait_for()
            assert img.evaluate("i => i.complete && i.naturalWidth > 0"), plot
        assert "production" in body and "bundle: published" in body and "trainer" in body
    if name == "pipeline-run":
        assert all(step in body for step in ("snapshot", "train", "evaluate", "gate", "export", "promote"))
    if name.startswith("images"):
        assert page.locator("figure.thumb").count() > 0
        loaded = page.locator("figure.thumb svg image").first
        assert loaded.get_attribute("href", timeout=5000)
    if name == "images-filtered":
        assert page.locator("figure.thumb").count() >= 4
        assert set(page.locator("figcaption .status").all_text_contents()) == {"proposed"}
    if name == "dataset":
        assert "disc" in body and "train" in body
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    assert problems == []
    page.close()
