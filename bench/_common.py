"""Helpers shared by the benchmarks: paths, measured child processes, machine facts, output.

Every measured run is a fresh child process. Its wall time is taken by the parent
around the whole process, and its peak memory is the child's own ``ru_maxrss``
as returned by ``os.wait4`` (the resident-set high-water mark of that process and
any children it waited for), so no figure is shared between runs.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
DVC_VENV = BENCH / ".venv-dvc"

# Settings that would point a workspace at another database or blob store: the benchmarks
# always measure the embedded default (SQLite + local blob folder).
_VISIONLOOP_ENV = ("VISIONLOOP_DATABASE_URL", "VISIONLOOP_BLOB_URL", "VISIONLOOP_WORKSPACE")


def bccd_path() -> Path:
    """The BCCD dataset (``VISIONLOOP_BCCD`` or ``shared/datasets/bccd`` beside the project)."""
    env = os.environ.get("VISIONLOOP_BCCD")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared/datasets/bccd"


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _VISIONLOOP_ENV}
    env.update(extra or {})
    return env


@dataclass
class Measured:
    """One child process: wall seconds (parent-side), peak RSS bytes, exit status, its JSON."""

    cmd: list[str]
    wall_s: float
    peak_rss_bytes: int
    returncode: int
    stdout: str
    stderr: str
    result: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_measured(
    cmd: Sequence[str],
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    result_file: Path | None = None,
) -> Measured:
    """Run ``cmd`` as a fresh process; time it and read its peak RSS via ``wait4``.

    stdout/stderr go to files (no pipe to drain while waiting). When ``result_file``
    is given, the child is expected to write a JSON object there.
    """
    logs = Path(os.environ.get("TMPDIR", "/tmp"))
    stamp = f"{os.getpid()}-{time.monotonic_ns()}"
    out_path, err_path = logs / f"bench-{stamp}.out", logs / f"bench-{stamp}.err"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(list(cmd), cwd=cwd, env=dict(env) if env else None, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    stdout = out_path.read_text(errors="replace")
    stderr = err_path.read_text(errors="replace")
    out_path.unlink()
    err_path.unlink()
    result: dict[str, Any] = {}
    if result_file is not None and result_file.exists():
        result = json.loads(result_file.read_text())
    # Linux reports ru_maxrss in KiB (macOS in bytes).
    peak = usage.ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return Measured(list(cmd), wall, peak, proc.returncode, stdout, stderr, result)


def warm(folder: Path) -> int:
    """Read every file under ``folder`` once (so both tools start from the page cache); bytes read."""
    total = 0
    for dirpath, _dirs, files in os.walk(folder):
        for name in files:
            with open(Path(dirpath) / name, "rb") as f:
                while chunk := f.read(1 << 20):
                    total += len(chunk)
    return total


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_bytes() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def machine() -> dict[str, Any]:
    try:
        from importlib.metadata import version

        vl_version = version("visionloop")
    except Exception:  # not installed: reported as unknown
        vl_version = "unknown"
    return {
        "cpus": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_total_bytes": _mem_total_bytes(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "visionloop": vl_version,
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()],
    }


def code_state() -> dict[str, Any]:
    """Which code was measured: a digest of ``src/visionloop/**/*.py`` and its newest change."""
    import hashlib

    files = sorted((ROOT / "src" / "visionloop").rglob("*.py"))
    digest = hashlib.sha256()
    for f in files:
        digest.update(f.relative_to(ROOT).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    newest = max((f.stat().st_mtime for f in files), default=0.0)
    return {
        "src_sha256": digest.hexdigest(),
        "src_newest_change_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(newest)),
    }


def busy_warning() -> str | None:
    """A warning when other work loads the machine (the figures then say less)."""
    load, cpus = os.getloadavg()[0], os.cpu_count() or 1
    if load > 0.5 * cpus:
        return (
            f"the 1-minute load average is {load:.2f} on {cpus} CPUs: other work is running, "
            "so these timings are pessimistic and noisy"
        )
    return None


def gib(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def write_results(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else "[green]pass[/green]" if ok else "[red]FAIL[/red]"


def fail(message: str) -> None:
    print(message, file=sys.stderr)
    raise SystemExit(2)
