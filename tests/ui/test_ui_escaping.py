"""Names that carry HTML (a class, a file, a reviewer, a user, messages) render as text everywhere."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from ui.conftest import IMG_TAG, SCRIPT, Seed, client_for, seed_workspace
from visionloop.review.queue import decide
from visionloop.ui.access import ACCESS, PUBLIC
from visionloop.workspace import init_workspace

RAW = ("<script>alert(1)", "<img src=x onerror")
ESCAPED_SCRIPT = "&lt;script&gt;alert(1)&lt;/script&gt;"
ESCAPED_IMG = "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;"


@pytest.fixture(scope="module")
def evil(tmp_path_factory: pytest.TempPathFactory, synth_day: Path) -> Iterator[Seed]:
    base = tmp_path_factory.mktemp("evil")
    shutil.copytree(synth_day, base / "day")
    ws = init_workspace(base / "project")
    seed = seed_workspace(ws, base / "day", base, evil=True)
    decide(ws, seed.tasks[0], "accept", reviewer=SCRIPT)
    decide(ws, seed.tasks[1], "skip", reviewer=IMG_TAG)
    yield seed
    ws.close()


def _pages(seed: Seed) -> list[str]:
    values = {
        "{ref}": seed.dataset,
        "{version}": str(seed.production),
        "{run_id}": str(seed.pipeline_run),
    }
    pages = []
    for method, path in sorted(ACCESS):
        skip = path.startswith("/api/") or "{oid}" in path or "{name}" in path
        if method != "GET" or skip or ACCESS[(method, path)] == PUBLIC:
            continue
        for key, value in values.items():
            path = path.replace(key, value)
        pages.append(path)
    return pages


EXPECTED = {
    "/": [ESCAPED_SCRIPT],
    "/users": [ESCAPED_SCRIPT],
    "/aliases": [ESCAPED_SCRIPT, ESCAPED_IMG],
    "/images": [ESCAPED_SCRIPT, ESCAPED_IMG],
    "/review/queue": [ESCAPED_SCRIPT, ESCAPED_IMG],
    "/datasets": [ESCAPED_SCRIPT],
    "/models": [ESCAPED_SCRIPT],
    "/pipeline": [ESCAPED_IMG],
}


def test_every_page_escapes_names_and_messages(evil: Seed) -> None:
    client = client_for(evil, evil.users["evil"])  # the signed-in user's own name is HTML too
    pages = [*_pages(evil), "/images?class=" + SCRIPT, "/datasets/diff?a=" + evil.dataset]
    assert len(pages) >= 14
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
        html = response.text
        for raw in RAW:
            assert raw not in html, f"{url} renders {raw!r} unescaped"
        assert ESCAPED_SCRIPT in html, url  # at least the signed-in user's name, in the header
        for escaped in EXPECTED.get(url, []):
            assert escaped in html, (url, escaped)
    model = client.get(f"/models/{evil.production}").text
    assert ESCAPED_SCRIPT in model and ESCAPED_IMG in model  # a class; the promote reason
    run = client.get(f"/pipeline/{evil.pipeline_run}").text
    assert ESCAPED_SCRIPT in run and ESCAPED_IMG in run  # the step's error; the run's error


def test_json_api_carries_names_as_data(evil: Seed) -> None:
    client = client_for(evil, evil.users["evil"])
    task = client.get(f"/api/review/tasks/{evil.tasks[0]}").json()["task"]
    assert task["decided_by"] == SCRIPT
    assert client.get("/api/review/next").headers["content-type"] == "application/json"
    assert "script-src 'self'" in client.get("/").headers["content-security-policy"]
