"""Load test of the HTTP API on loopback: GET /recommend latency and throughput at a
fixed number of concurrent clients, and the time from POST /events to the change
showing in that user's next recommendations.

The catalogue is a synthetic run of Gowalla's size (29,858 users, 40,981 items, d=64)
unless --run names a real one: MF (``--model mf``, the default) or semgraph with the
transformer tower (``--model transformer``: random item text vectors, untrained weights,
30 time-ordered items per user; a user's events go through the tower as in any such run). Load goes to 127.0.0.1 only and is bounded by
--requests and --seconds.

Several servers are measured one after another in one run (--variants):

* ``cached``: ``semrec serve`` as shipped (exact index, top items precomputed);
* ``scan``: the same with ``--cache-depth 0`` (every request scans the catalogue);
* ``hnsw``: the approximate index (no cache);
* ``ceiling``: a FastAPI route returning a constant answer of the same shape, what
  FastAPI + uvicorn alone cost here;
* ``bare``: the same constant from a bare ASGI callable, what uvicorn alone costs.

The load generator is wrk (C, Debian's package ``wrk``) when it is installed, so the
client's own CPU barely competes with the server for the 2 cores; ``--driver python``
uses an asyncio client instead (heavier: it takes a share of the cores it measures).

    python benchmarks/serve_load.py --clients 16 --seconds 20
    python benchmarks/serve_load.py --clients 1 --seconds 10 --variants cached,scan
    python benchmarks/serve_load.py --model transformer --variants cached,scan
    python benchmarks/serve_load.py --variants cached --query 'diversity=0.3'   # re-ranked answers
"""
from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qsl

import numpy as np


def synthetic_run(folder: Path, n_users: int, n_items: int, dim: int, per_user: int = 30) -> Path:
    """An MF run folder with random embeddings and a random history per user."""
    import torch

    from semrec.artifacts.run import save_run, staging
    from semrec.config import DataConfig
    from semrec.data.dataset import Interactions
    from semrec.data.idmap import IdMap
    from semrec.data.split import Split
    from semrec.models.base import EmbeddingScorer
    from semrec.models.mf import MF, MFConfig
    from semrec.train.loop import TrainConfig

    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(n_users), per_user)
    items = rng.integers(0, n_items, size=len(users))
    empty = Interactions(np.zeros(0, np.int64), np.zeros(0, np.int64))
    split = Split("synthetic", IdMap(range(n_users)), IdMap(range(n_items)),
                  Interactions(users, items), empty, empty)
    model = MF(n_users, n_items, dim=dim)
    scorer = EmbeddingScorer(model.user_emb.weight.detach(), model.item_emb.weight.detach())
    with staging(folder, overwrite=True) as tmp, torch.no_grad():
        save_run(tmp, model_name="mf", model=model, model_config=MFConfig(dim=dim),
                 data_config=DataConfig(split="synthetic"), train_config=TrainConfig(), split=split,
                 scorer=scorer, dataset={"name": "synthetic-gowalla-size", "path": None}, titles={},
                 metrics={})
    return folder


def synthetic_transformer_run(folder: Path, n_users: int, n_items: int, dim: int, per_user: int = 30) -> Path:
    """A semgraph run with the transformer tower: random unit text vectors stand in for the
    encoder's (the real encoder's description is recorded, so ``POST /items`` with text
    works), and every user has ``per_user`` items in time order."""
    import torch

    from semrec.artifacts.run import save_run, staging
    from semrec.config import DataConfig, TextConfig
    from semrec.data.dataset import Interactions
    from semrec.data.idmap import IdMap
    from semrec.data.split import Split
    from semrec.models.semgraph import SemGraph, SemGraphConfig
    from semrec.text.features import TextFeatures, encoder_info, load_encoder
    from semrec.train.loop import TrainConfig, training_graph

    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(n_users), per_user)
    items = rng.integers(0, n_items, size=len(users))
    times = np.tile(np.arange(per_user), n_users)
    empty = Interactions(np.zeros(0, np.int64), np.zeros(0, np.int64), timestamps=np.zeros(0, np.int64))
    split = Split("leave-one-out", IdMap(range(n_users)), IdMap(range(n_items)),
                  Interactions(users, items, timestamps=times), empty, empty)
    encoder = encoder_info(load_encoder(TextConfig(), progress=False))
    text = rng.standard_normal((n_items, encoder["dim"])).astype(np.float32)
    text /= np.linalg.norm(text, axis=1, keepdims=True)
    config = SemGraphConfig(dim=dim, user_tower="transformer", history="sequence", temperature=0.1)
    model = SemGraph(n_users, n_items, torch.from_numpy(text), **dataclasses.asdict(config))
    scorer = model.scorer(training_graph(split)).remember(split.matrix("train", "timestamps"))
    with staging(folder, overwrite=True) as tmp, torch.no_grad():
        save_run(tmp, model_name="semgraph", model=model, model_config=config,
                 data_config=DataConfig(split="leave-one-out"), train_config=TrainConfig(), split=split,
                 scorer=scorer, dataset={"name": "synthetic-gowalla-size", "path": None}, titles={},
                 metrics={}, text=TextFeatures(text, None, encoder), text_config=TextConfig())
    return folder


async def get(reader, writer, path: str) -> tuple[int, bytes]:
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    await writer.drain()
    return await read_response(reader)


async def post(reader, writer, path: str, body: dict) -> tuple[int, bytes]:
    data = json.dumps(body).encode()
    writer.write(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                 f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    await writer.drain()
    return await read_response(reader)


async def read_response(reader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    length = next(int(v) for k, _, v in (line.partition(": ") for line in lines[1:]) if k.lower() == "content-length")
    return status, await reader.readexactly(length)


async def load(port: int, clients: int, requests: int, seconds: float, n_users: int, extra: str = "") -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    counter = iter(range(requests))

    async def client(c: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        rng = np.random.default_rng(c)
        for _ in counter:
            if time.perf_counter() > deadline:
                break
            t = time.perf_counter()
            status, _ = await get(reader, writer, f"/recommend?user={rng.integers(n_users)}&k=10{extra}")
            latencies.append(time.perf_counter() - t)
            errors += status != 200
        writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    wall = time.perf_counter() - t0
    ms = np.asarray(latencies) * 1e3
    return {"clients": clients, "requests": len(ms), "errors": errors, "wall_s": round(wall, 2),
            "throughput_rps": round(len(ms) / wall, 1), "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p90_ms": round(float(np.percentile(ms, 90)), 2), "p99_ms": round(float(np.percentile(ms, 99)), 2)}


async def freshness(port: int, n_users: int, trials: int = 50) -> dict:
    """POST an event for the user's current top item, then GET until it is gone."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    times = []
    for j in range(trials):
        user = f"{(j * 7919) % n_users}"
        _, body = await get(reader, writer, f"/recommend?user={user}&k=10")
        top = json.loads(body)["items"][0]["item"]
        t = time.perf_counter()
        status, _ = await post(reader, writer, "/events", {"user": user, "item": top, "key": f"fresh-{j}-{t}"})
        assert status == 200
        while True:
            _, body = await get(reader, writer, f"/recommend?user={user}&k=10")
            if json.loads(body)["items"][0]["item"] != top:
                break
        times.append(time.perf_counter() - t)
    writer.close()
    ms = np.asarray(times) * 1e3
    return {"trials": trials, "p50_ms": round(float(np.percentile(ms, 50)), 2),
            "p90_ms": round(float(np.percentile(ms, 90)), 2), "max_ms": round(float(ms.max()), 2),
            "slowest_trial": int(ms.argmax()), "over_50_ms": int((ms > 50).sum())}


CONSTANT = {"items": [{"item": str(i), "score": 1.0 - i / 10, "title": f"Item {i}"} for i in range(10)]}


def ceiling_app():
    """A FastAPI app whose GET /recommend returns a constant answer of the real shape
    (10 scored items with titles) without touching a model: what the HTTP stack alone
    costs on this machine, the ceiling for any recommender served this way."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/recommend")
    async def recommend(user: str, k: int = 10) -> dict:
        return {"user": user, **CONSTANT}

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    return app


WRK_SCRIPT = """
-- GET /recommend for a random user of the run; stops after its share of requests
local users = {USERS}
local limit = {LIMIT}
local done_count = 0
math.randomseed({SEED})
request = function()
  return wrk.format("GET", "/recommend?user=" .. users[math.random(#users)] .. "&k=10{EXTRA}")
end
response = function(status, headers, body)
  done_count = done_count + 1
  if done_count >= limit then wrk.thread:stop() end
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('{"requests": %d, "errors": %d, "wall_us": %d, "p50_us": %d, "p90_us": %d, ' ..
    '"p99_us": %d, "max_us": %d}\\n', summary.requests, e.status + e.connect + e.read + e.write + e.timeout,
    summary.duration, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


def wrk_load(port: int, clients: int, requests: int, seconds: float, user_ids: list[str], work: Path,
             extra: str = "") -> dict:
    """The load phase driven by wrk (one thread, ``clients`` connections)."""
    from urllib.parse import quote

    script = work / "recommend.lua"
    users = "{" + ",".join(json.dumps(quote(u, safe="")) for u in user_ids) + "}"
    script.write_text(WRK_SCRIPT.replace("{USERS}", users).replace("{LIMIT}", str(requests))
                      .replace("{SEED}", "7").replace("{EXTRA}", extra), encoding="utf-8")
    out = subprocess.run(["wrk", "-t1", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
                          "-s", str(script), f"http://127.0.0.1:{port}"],
                         capture_output=True, text=True, check=True, timeout=seconds + 60)
    r = json.loads(out.stdout.strip().splitlines()[-1])
    # wrk runs for the whole -d even when the script stops early: with the cap hit, the
    # throughput below is a lower bound (raise --requests to measure it)
    wall = r["wall_us"] / 1e6
    return {"clients": clients, "requests": r["requests"], "capped": r["requests"] >= requests,
            "errors": r["errors"], "wall_s": round(wall, 2),
            "throughput_rps": round(r["requests"] / wall, 1), "p50_ms": r["p50_us"] / 1e3,
            "p90_ms": r["p90_us"] / 1e3, "p99_ms": r["p99_us"] / 1e3, "max_ms": r["max_us"] / 1e3}


def wait_healthy(port: int, server: subprocess.Popen) -> None:
    import httpx

    deadline = time.monotonic() + 180
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit("server did not start") from None
            time.sleep(0.2)


def server_command(variant: str, run: Path, port: int) -> list[str]:
    if variant in ("ceiling", "bare"):
        app = ["--factory", "serve_load:ceiling_app"] if variant == "ceiling" else ["serve_load:bare_app"]
        return [sys.executable, "-m", "uvicorn", *app, "--app-dir", str(Path(__file__).parent),
                "--port", str(port), "--log-level", "warning", "--no-access-log"]
    extra = {"cached": [], "scan": ["--cache-depth", "0"], "hnsw": ["--index", "hnsw"]}[variant]
    return [sys.executable, "-m", "semrec", "serve", str(run), "--port", str(port), *extra]


def measure(variant: str, run: Path, args, user_ids: list[str], work: Path) -> dict:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = work / f"events-{variant}.sqlite"
    store.unlink(missing_ok=True)
    constant = variant in ("ceiling", "bare")
    cmd = server_command(variant, run, port) + ([] if constant else ["--store", f"sqlite:///{store}"])
    server = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    try:
        t0 = time.perf_counter()
        wait_healthy(port, server)
        result: dict = {"variant": variant, "ready_s": round(time.perf_counter() - t0, 1)}
        n_users = len(user_ids)
        extra = "" if constant or not args.query else "&" + args.query
        if args.driver == "wrk":
            wrk_load(port, args.clients, 10**6, 2, user_ids, work, extra)  # warm-up
            result["recommend"] = wrk_load(port, args.clients, args.requests, args.seconds, user_ids, work, extra)
        else:
            asyncio.run(load(port, args.clients, 200, 10, n_users, extra))  # warm-up
            result["recommend"] = asyncio.run(load(port, args.clients, args.requests, args.seconds, n_users, extra))
        if not constant:
            result["event_to_visible"] = asyncio.run(freshness(port, n_users))
        return result
    finally:
        server.terminate()
        server.wait(timeout=30)


async def bare_app(scope, receive, send) -> None:
    """The same constant answer from a bare ASGI callable: uvicorn + httptools alone."""
    if scope["type"] != "http":
        return
    if scope["path"] == "/health":
        body = b'{"status":"ok"}'
    else:
        user = dict(parse_qsl(scope["query_string"].decode())).get("user", "")
        body = json.dumps({"user": user, **CONSTANT}, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=None, help="run folder to serve (default: a synthetic Gowalla-size run)")
    ap.add_argument("--model", choices=["mf", "transformer"], default="mf",
                    help="the synthetic run: MF (default) or semgraph with the transformer tower")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--query", default="",
                    help="extra GET /recommend parameters for the served variants, e.g. 'diversity=0.3&novelty=0.2'")
    ap.add_argument("--requests", type=int, default=200_000,
                    help="upper bound on GET requests per variant (a cap: --seconds normally ends the load)")
    ap.add_argument("--seconds", type=float, default=20, help="upper bound on each load phase")
    ap.add_argument("--variants", default="cached,scan,ceiling",
                    help="comma-separated: cached, scan, hnsw, ceiling, bare (see the module docstring)")
    ap.add_argument("--driver", choices=["wrk", "python"], default="wrk" if shutil.which("wrk") else "python",
                    help="load generator (default: wrk when installed)")
    args = ap.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - {"cached", "scan", "hnsw", "ceiling", "bare"}
    if unknown:
        raise SystemExit(f"--variants: unknown {', '.join(sorted(unknown))}")
    work = Path(tempfile.mkdtemp(prefix="semrec-serve-load-"))
    try:
        if args.run:
            run = Path(shutil.copytree(args.run, work / "run"))
        else:
            make = synthetic_transformer_run if args.model == "transformer" else synthetic_run
            run = make(work / "run", 29858, 40981, 64)
        # flush the run just written: on ext4 the first fsync of the event store would
        # otherwise wait for these megabytes too (seen: 81-89 ms for the first event)
        os.sync()
        from semrec.artifacts.run import load_run

        loaded = load_run(run)
        summary = {"model": loaded.model_name, "n_items": len(loaded.items), "n_users": len(loaded.users),
                   "driver": args.driver, "query": args.query,
                   "clients": args.clients}
        user_ids = list(loaded.users.ids)
        assert args.run or user_ids[:3] == ["0", "1", "2"], "synthetic ids are 0..n-1 (the python driver draws them)"
        del loaded
        results = [measure(v, run, args, user_ids, work) for v in variants]
        print(json.dumps({**summary, "results": results}, indent=2))
        print(f"\n{'variant':<10} {'req/s':>9} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}  event->visible p50/max ms")
        for r in results:
            rec, fresh = r["recommend"], r.get("event_to_visible")
            f = f"{fresh['p50_ms']:.1f} / {fresh['max_ms']:.1f}" if fresh else "-"
            print(f"{r['variant']:<10} {rec['throughput_rps']:>9.1f} {rec['p50_ms']:>8.2f} {rec['p90_ms']:>8.2f} "
                  f"{rec['p99_ms']:>8.2f}  {f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
