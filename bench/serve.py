"""Serving throughput and latency: `visionloop serve` over HTTP against the bare model loop (the limit).

A real bundle is built first (SSDlite trained briefly on synthetic scenes, exported to ONNX, published
and materialized). Then, for each client concurrency, in the same run and one after the other:

- **bare**: a fresh process decodes the same JPEG bytes, preprocesses them and runs the ONNX Runtime
  session the server would open (``serve.model.load`` / ``serve.model.detect``) in a loop: no HTTP;
- **server**: `visionloop serve --bundle DIR` as a real process on 127.0.0.1, and N keep-alive
  HTTP clients (``http.client``, one thread each, in this process) posting the same bytes to
  ``/v1/detect``.

The clients run on the same machine as the server and take CPU from it; their CPU time is reported.

    .venv/bin/python bench/serve.py [--seconds 15] [--concurrency 1 4 16] [--train-seconds 45]
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from _common import busy_warning, child_env, code_state, fail, machine, write_results

console = Console()
WARMUP_S = 2.0


def build_bundle(work: Path, train_seconds: float) -> Path:
    """Train SSDlite (320 px) on synthetic scenes for about ``train_seconds``, export, bundle."""
    from visionloop.data.ingest import import_dataset
    from visionloop.data.synth import generate
    from visionloop.data.versions import snapshot
    from visionloop.export.bundle import write_bundle
    from visionloop.export.run import export_model
    from visionloop.train.config import TrainConfig
    from visionloop.train.run import train
    from visionloop.workspace import init_workspace

    generate(work / "data", images=96, seed=1, size=320)
    with init_workspace(work / "project") as ws:
        import_dataset(ws, work / "data")
        snapshot(ws, "synthetic", keep_splits=True)
        cfg = TrainConfig(imgsz=320, epochs=50, time_budget_min=train_seconds / 60)
        train(ws, "latest", cfg)
        export_model(ws, 1, parity_images=4, int8=False, ort=False)
        return write_bundle(ws, 1, work / "bundle").path


def request_image(path: Path) -> bytes:
    """A 640×480 synthetic scene as JPEG (quality 90), like a camera frame."""
    import numpy as np

    from visionloop.data.synth import render_scene

    image, _ = render_scene(np.random.default_rng(7), "day", 640)
    buf = io.BytesIO()
    image.crop((0, 0, 640, 480)).save(buf, "JPEG", quality=90)
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def _summary(latencies: list[float], seconds: float, errors: int = 0) -> dict[str, Any]:
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    return {
        "requests": len(latencies),
        "errors": errors,
        "seconds": round(seconds, 2),
        "images_per_s": round(len(latencies) / seconds, 2),
        "p50_ms": round(q[49] * 1000, 2),
        "p99_ms": round(q[98] * 1000, 2),
    }


def bare_child(bundle: str, image: str) -> None:
    """The limit, in this (fresh, torch-free) process: decode → preprocess → ORT → detections, back to
    back in ``threads`` threads sharing one session. Reads ``THREADS SECONDS`` lines, answers JSON."""
    from visionloop.serve.model import decode, detect, load

    loaded = load(bundle)
    data = Path(image).read_bytes()
    threshold = float(loaded.bundle.manifest["score_threshold"])

    def loop(until: float, out: list[float] | None) -> None:
        while (t := time.perf_counter()) < until:
            detect(loaded, decode(data), threshold)
            if out is not None:
                out.append(time.perf_counter() - t)

    for line in sys.stdin:
        threads, seconds = int(line.split()[0]), float(line.split()[1])
        warm_end = time.perf_counter() + WARMUP_S
        pool = [threading.Thread(target=loop, args=(warm_end, None)) for _ in range(threads)]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        per_thread: list[list[float]] = [[] for _ in range(threads)]
        cpu0, t0 = time.process_time(), time.perf_counter()
        pool = [threading.Thread(target=loop, args=(t0 + seconds, xs)) for xs in per_thread]
        for th in pool:
            th.start()
        for th in pool:
            th.join()
        wall = time.perf_counter() - t0
        latencies = [x for xs in per_thread for x in xs]
        out = _summary(latencies, wall) | {"threads": threads, "cpu_s": round(time.process_time() - cpu0, 2)}
        print(json.dumps(out), flush=True)


class Bare:
    """The bare loop as a persistent child process (started once, measured many times)."""

    def __init__(self, bundle: Path, image: Path) -> None:
        cmd = [sys.executable, __file__, "--bare-child", str(bundle), str(image)]
        self.proc = subprocess.Popen(
            cmd, env=child_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )

    def run(self, threads: int, seconds: float) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(f"{threads} {seconds}\n")
        line = self.proc.stdout.readline()
        if not line:
            fail(f"the bare loop exited with status {self.proc.wait()}")
        return dict(json.loads(line))

    def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(30)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_ready(proc: subprocess.Popen[bytes], port: int, log: Path, seconds: float) -> None:
    """Until the server child on ``port`` answers /readyz; stops the bench if it exits or times out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            fail(f"the server exited: {log.read_text(errors='replace')[-3000:]}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.1)
    fail(f"the server did not become ready in {seconds:g} s")


class Server:
    """`visionloop serve --bundle DIR` as a real process on a free loopback port."""

    def __init__(self, bundle: Path, log: Path) -> None:
        self.port = _free_port()
        vl = str(Path(sys.executable).with_name("visionloop"))
        cmd = [vl, "serve", "--bundle", str(bundle), "--port", str(self.port)]
        with log.open("wb") as err:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(cmd, env=child_env(), stdout=subprocess.DEVNULL, stderr=err)
        wait_ready(self.proc, self.port, log, 60)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def run_server(server: Server, data: bytes, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` keep-alive connections posting ``data`` back to back; latencies after a warm-up."""
    start = time.perf_counter() + WARMUP_S
    end = start + seconds
    per_client: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    headers = {"content-type": "image/jpeg"}

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        mine = per_client[i]
        while (t := time.perf_counter()) < end:
            try:
                conn.request("POST", "/v1/detect", body=data, headers=headers)
                r = conn.getresponse()
                r.read()
                ok = r.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            if t >= start:
                if ok:
                    mine.append(time.perf_counter() - t)
                else:
                    errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for th in threads:
        th.start()
    time.sleep(max(0.0, start - time.perf_counter()))
    server_cpu0, client_cpu0 = _cpu_s(server.proc.pid), resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    time.sleep(max(0.0, end - time.perf_counter()))
    server_cpu = _cpu_s(server.proc.pid) - server_cpu0
    ru = resource.getrusage(resource.RUSAGE_SELF)
    wall = time.perf_counter() - t0
    client_cpu = ru.ru_utime + ru.ru_stime - client_cpu0.ru_utime - client_cpu0.ru_stime
    for th in threads:
        th.join()
    latencies = [x for xs in per_client for x in xs]
    if not latencies:
        fail("no request succeeded")
    # the last requests started before `end` may finish after it: count by start time, over `seconds`
    return _summary(latencies, seconds, sum(errors)) | {
        "server_cpu_s": round(server_cpu, 2),
        "client_cpu_s": round(client_cpu, 2),
        "cpu_wall_s": round(wall, 2),
    }


def _median_round(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Per figure, the median over rounds (and the rounds themselves)."""
    keys = [k for k, v in rounds[0].items() if isinstance(v, int | float)]
    med = {k: round(statistics.median(r[k] for r in rounds), 2) for k in keys}
    return med | {"rounds": rounds}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per figure and round")
    parser.add_argument("--rounds", type=int, default=3, help="bare and server alternate this many times")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--train-seconds", type=float, default=45.0)
    parser.add_argument("--bundle", type=Path, default=None, help="an existing bundle (skips training)")
    parser.add_argument("--bare-child", nargs=2, metavar=("BUNDLE", "IMAGE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_child:
        bare_child(*args.bare_child)
        return
    from visionloop.serve.model import inference_slots

    slots = inference_slots()
    with tempfile.TemporaryDirectory(prefix="vl-bench-serve-") as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        bundle = args.bundle or build_bundle(work, args.train_seconds)
        build_s = time.perf_counter() - t0
        image = work / "frame.jpg"
        data = request_image(image)
        warning, code_before, load_before = busy_warning(), code_state(), os.getloadavg()
        levels = []
        server, bare = Server(bundle, work / "serve.log"), Bare(bundle, image)
        try:
            for clients in args.concurrency:
                bare_rounds, server_rounds = [], []
                for _ in range(args.rounds):  # alternate, so that both meet the same background load
                    bare_rounds.append(bare.run(min(clients, slots), args.seconds))
                    server_rounds.append(run_server(server, data, clients, args.seconds))
                b, sv = _median_round(bare_rounds), _median_round(server_rounds)
                ratio = sv["images_per_s"] / b["images_per_s"]
                levels.append({"concurrency": clients, "bare": b, "server": sv, "ratio": round(ratio, 3)})
                console.print(
                    f"c={clients}: server {sv['images_per_s']} img/s, bare {b['images_per_s']} img/s "
                    f"({min(clients, slots)} thread(s)), ratio {ratio:.2f}",
                    highlight=False,
                )
        finally:
            server.stop()
            bare.stop()
        manifest = json.loads((bundle / "bundle.json").read_text())
    data_out = {
        "benchmark": "serve",
        "machine": machine(),
        "busy_warning": warning or busy_warning(),
        "loadavg_start": [round(x, 2) for x in load_before],
        "code": {"start": code_before, "end": code_state()},
        "model": {
            "architecture": manifest["architecture"],
            "imgsz": manifest["input"]["width"],
            "onnx_bytes": manifest["files"]["model.onnx"]["bytes"],
            "test_map50": manifest["metrics"].get("map50"),
        },
        "image": {"width": 640, "height": 480, "format": "JPEG", "bytes": len(data)},
        "inference_slots": slots,
        "build_s": round(build_s, 1),
        "seconds_per_round": args.seconds,
        "rounds": args.rounds,
        "target_ratio": 0.85,
        "levels": levels,
    }
    write_results("serve.json", data_out)
    table = Table(title="visionloop serve: /v1/detect over HTTP vs the bare ONNX Runtime loop (640×480 JPEG)")
    for col in (
        "clients",
        "server img/s",
        "bare img/s",
        "ratio",
        "server p50/p99 ms",
        "bare p50/p99 ms",
        "clients' CPU",
    ):
        table.add_column(col)
    for lv in levels:
        sv, b = lv["server"], lv["bare"]
        table.add_row(
            str(lv["concurrency"]),
            f"{sv['images_per_s']:.1f}",
            f"{b['images_per_s']:.1f}",
            f"{lv['ratio']:.2f}",
            f"{sv['p50_ms']:.1f} / {sv['p99_ms']:.1f}",
            f"{b['p50_ms']:.1f} / {b['p99_ms']:.1f}",
            f"{sv['client_cpu_s'] / sv['cpu_wall_s']:.0%} of a core",
        )
    console.print(table)
    if data_out["busy_warning"]:
        console.print(f"[yellow]warning:[/] {data_out['busy_warning']}")


if __name__ == "__main__":
    main()
