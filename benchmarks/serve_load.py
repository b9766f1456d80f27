"""Load test of the HTTP API on loopback: GET /recommend latency and throughput at a
fixed number of concurrent clients, and the time from POST /events to the change
showing in that user's next recommendations.

The catalogue is a synthetic MF run of Gowalla's size (29,858 users, 40,981 items,
d=64) unless --run names a real one. Load goes to 127.0.0.1 only and is bounded by
--requests and --seconds.

    python benchmarks/serve_load.py --clients 16 --requests 4000 --seconds 60
    python benchmarks/serve_load.py --clients 16 --requests 4000 --seconds 60 --ceiling   # HTTP stack alone
"""
from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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
    with staging(folder) as tmp, torch.no_grad():
        save_run(tmp, model_name="mf", model=model, model_config=MFConfig(dim=dim),
                 data_config=DataConfig(split="synthetic"), train_config=TrainConfig(), split=split,
                 scorer=scorer, dataset={"name": "synthetic-gowalla-size", "path": None}, titles={},
                 metrics={})
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


async def load(port: int, clients: int, requests: int, seconds: float, n_users: int) -> dict:
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
            status, _ = await get(reader, writer, f"/recommend?user={rng.integers(n_users)}&k=10")
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


def ceiling_app():
    """A FastAPI app whose GET /recommend returns a constant answer of the real shape
    (10 scored items with titles) without touching a model: what the HTTP stack alone
    costs on this machine, the ceiling for any recommender served this way."""
    from fastapi import FastAPI

    app = FastAPI()
    answer = {"items": [{"item": str(i), "score": 1.0 - i / 10, "title": f"Item {i}"} for i in range(10)]}

    @app.get("/recommend")
    async def recommend(user: str, k: int = 10) -> dict:
        return {"user": user, **answer}

    @app.get("/health")
    async def health() -> dict:
        return {"status": "ok"}

    return app


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", default=None, help="run folder to serve (default: a synthetic Gowalla-size run)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--requests", type=int, default=4000, help="upper bound on GET requests")
    ap.add_argument("--seconds", type=float, default=60, help="upper bound on the load phase")
    ap.add_argument("--index", default="flat", choices=["flat", "hnsw", "ivf"])
    ap.add_argument("--ceiling", action="store_true",
                    help="serve a constant answer of the same shape instead (the HTTP stack's own ceiling)")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="semrec-serve-load-"))
    try:
        if args.run:
            run = Path(shutil.copytree(args.run, work / "run"))
        else:
            run = synthetic_run(work / "run", 29858, 40981, 64)
        from semrec.artifacts.run import load_run

        loaded = load_run(run)
        n_users, n_items = len(loaded.users), len(loaded.items)
        user_ids = loaded.users.ids
        del loaded
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if args.ceiling:
            cmd = [sys.executable, "-m", "uvicorn", "--factory", "serve_load:ceiling_app", "--app-dir",
                   str(Path(__file__).parent), "--port", str(port), "--log-level", "warning", "--no-access-log"]
        else:
            cmd = [sys.executable, "-m", "semrec", "serve", str(run), "--port", str(port), "--index", args.index]
        server = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        try:
            import httpx

            deadline = time.monotonic() + 120
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("server did not start") from None
                    time.sleep(0.2)
            assert user_ids[:3] == [str(i) for i in range(3)] or args.run, "synthetic ids are 0..n-1"
            asyncio.run(load(port, args.clients, 200, 10, n_users))  # warm-up
            result = {"n_items": n_items, "n_users": n_users, "index": "constant answer" if args.ceiling else args.index,
                      "recommend": asyncio.run(load(port, args.clients, args.requests, args.seconds, n_users))}
            if not args.ceiling:
                result["event_to_visible"] = asyncio.run(freshness(port, n_users))
        finally:
            server.terminate()
            server.wait(timeout=30)
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
