"""Training and the demo on a busy machine (issue 20, item 12).

Starts N background processes that each keep one core busy (a Python busy loop, like any
other CPU-bound job), then measures, in fresh ``semrec`` processes:

* the median seconds of an ml-100k MF epoch (``semrec train ... --set epochs=E``, read
  from the run's ``log.jsonl``), for each thread policy: ``auto`` (the default rule of
  ``semrec.train.threads``) and fixed counts such as ``2`` (torch's own default on this
  machine, what semrec did before);
* the seconds ``semrec demo`` takes until its recommendations are printed.

Targets: at load 4 an epoch costs at most 3x its idle time (same policy); at every load
the demo's first recommendation comes within 60 s. Run it on an otherwise idle machine::

    python benchmarks/busy_machine.py                       # loads 0,2,4; auto, 1 and 2 threads
    python benchmarks/busy_machine.py --loads 0,4 --policies auto --epochs 8 --out busy.jsonl

A quick check that it works (seconds, not a measurement)::

    python benchmarks/busy_machine.py --loads 0,1 --policies auto --epochs 1 --demo-epochs 1
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BURN = "while True: pass"


def start_load(n: int) -> list[subprocess.Popen]:
    """``n`` processes that each keep one core busy."""
    return [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(n)]


def stop_load(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def epoch_seconds(data: str, split: str, epochs: int, policy: str, workdir: Path) -> dict:
    """Median training seconds per epoch of a fresh ``semrec train`` process."""
    out = workdir / f"mf-{policy}-{time.monotonic_ns()}"
    sets = [f"epochs={epochs}", "patience=1000", "progress=false", "tensorboard=false"]
    if policy != "auto":
        sets.append(f"threads={int(policy)}")
    cmd = [sys.executable, "-m", "semrec", "train", "--data", data, "--model", "mf", "--split", split,
           "--out", str(out), "--json"] + [a for s in sets for a in ("--set", s)]
    started = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"semrec train failed:\n{proc.stderr[-2000:]}")
    epochs_s = [json.loads(line)["train_s"] for line in (out / "log.jsonl").read_text().splitlines()]
    return {"epoch_s": statistics.median(epochs_s), "epochs_s": epochs_s, "wall_s": wall}


def demo_seconds(workdir: Path, demo_epochs: int | None) -> dict:
    """Seconds from starting ``semrec demo`` to its printed recommendations, and in all."""
    cmd = [sys.executable, "-m", "semrec", "demo", "--out", str(workdir / f"demo-{time.monotonic_ns()}")]
    if demo_epochs is not None:
        cmd += ["--epochs", str(demo_epochs)]
    started = time.perf_counter()
    first = None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in proc.stdout:
        if first is None and line.startswith("semrec recommends for user"):
            first = time.perf_counter() - started
    code = proc.wait()
    if code != 0 or first is None:
        raise SystemExit(f"semrec demo failed (exit {code})")
    return {"demo_first_s": first, "demo_s": time.perf_counter() - started}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--loads", default="0,2,4", help="Background busy processes, comma-separated.")
    ap.add_argument("--policies", default="auto,1,2", help="Thread policies: auto and/or fixed counts.")
    ap.add_argument("--data", default="ml-100k")
    ap.add_argument("--split", default="given:u1")
    ap.add_argument("--epochs", type=int, default=5, help="MF epochs per measurement.")
    ap.add_argument("--settle", type=float, default=5.0, help="Seconds the load runs before measuring.")
    ap.add_argument("--no-demo", action="store_true", help="Skip the demo measurement.")
    ap.add_argument("--demo-epochs", type=int, default=None, help="Pass --epochs to the demo (quick checks).")
    ap.add_argument("--out", default=None, help="Append one JSON line per (load, policy) here.")
    args = ap.parse_args()
    loads = [int(x) for x in args.loads.split(",")]
    policies = [p.strip() for p in args.policies.split(",")]

    rows = []
    with tempfile.TemporaryDirectory(prefix="semrec-busy-") as tmp:
        workdir = Path(tmp)
        for load in loads:
            procs = start_load(load)
            try:
                time.sleep(args.settle if load else 0)
                loadavg = os.getloadavg()[0]
                for policy in policies:
                    row = {"load": load, "loadavg": loadavg, "policy": policy, "cores": os.cpu_count(),
                           **epoch_seconds(args.data, args.split, args.epochs, policy, workdir)}
                    rows.append(row)
                    print(f"load {load} ({loadavg:.1f}) {policy:>4} threads: epoch {row['epoch_s']:.2f}s "
                          f"(wall {row['wall_s']:.1f}s)", flush=True)
                if not args.no_demo:
                    d = demo_seconds(workdir, args.demo_epochs)
                    rows.append({"load": load, "loadavg": loadavg, "policy": "demo", **d})
                    print(f"load {load} demo: recommendations after {d['demo_first_s']:.1f}s "
                          f"(done {d['demo_s']:.1f}s)", flush=True)
            finally:
                stop_load(procs)

    idle = {r["policy"]: r["epoch_s"] for r in rows if r["load"] == min(loads) and "epoch_s" in r}
    print(f"\n{'load':>4} {'policy':>6} {'epoch s':>8} {'x idle':>7} {'demo s':>7}")
    for r in rows:
        if "epoch_s" in r:
            ratio = r["epoch_s"] / idle[r["policy"]] if idle.get(r["policy"]) else float("nan")
            print(f"{r['load']:>4} {r['policy']:>6} {r['epoch_s']:>8.2f} {ratio:>7.2f} {'':>7}")
        else:
            print(f"{r['load']:>4} {'demo':>6} {'':>8} {'':>7} {r['demo_first_s']:>7.1f}")
    if args.out:
        with open(args.out, "a", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
