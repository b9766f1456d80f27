"""Models on LightGCN's Gowalla split through the real pipeline, one table row each.

For every model in ``--models`` this trains with :func:`semrec.pipeline.train_and_save`
on the ``given`` split (validation carved from train, seed 0), writes a run folder
``<--out>/<model>``, and reports test Recall@20 and NDCG@20 (best-validation
checkpoint), mean training seconds per epoch, wall seconds to the best epoch (training
plus validation up to and including it), total wall seconds of ``train_and_save``
(fit + test evaluation + saving) and the peak RSS of the process that ran the model.
Each model runs in its own child process, so the peak RSS is that model's alone.

Settings: ``--set model:key=value`` applies to one model, ``--set key=value`` to all;
keys are the ``semrec train --set`` keys (``lr``, ``batch_size``, ``eval_every``,
``max_seconds``, ``epochs``, ``patience``, model hyper-parameters...). Defaults added
for every trainable model unless overridden: ``progress=false``, ``eval_every=5``.

    nice -n 10 python benchmarks/gowalla.py --models graphfilter,xsimgcl \\
        --set xsimgcl:batch_size=8192 --set xsimgcl:lr=0.005 --set xsimgcl:max_seconds=1200
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_OUT = Path("/tmp/gowalla-runs")
TRAINABLE_DEFAULTS = ("progress=false", "eval_every=5")


def sets_for(model: str, sets: list[str]) -> list[str]:
    """The ``key=value`` pairs for ``model``: unprefixed ones and ``model:``-prefixed ones."""
    out = []
    for item in sets:
        head, colon, rest = item.partition(":")
        if colon and "=" not in head:
            if head == model:
                out.append(rest)
        else:
            out.append(item)
    return out


def run_one(model: str, sets: list[str], out_root: Path, threads: int) -> dict:
    """Train one model in this process and return its row."""
    import torch

    from semrec.data.load import load_dataset
    from semrec.models import catalog
    from semrec.pipeline import build_config, train_and_save

    torch.set_num_threads(threads)
    if catalog.spec(model).kind == "trainable":
        given = {s.partition("=")[0].split(".")[-1] for s in sets}
        sets = [d for d in TRAINABLE_DEFAULTS if d.partition("=")[0] not in given] + sets
    config = build_config(model, sets=sets, split="given")
    dataset = load_dataset("gowalla")
    out = out_root / model
    if out.exists():
        import shutil

        shutil.rmtree(out)
    t0 = time.perf_counter()
    run = train_and_save("gowalla", config, out, dataset=dataset, overwrite=True,
                         on_note=lambda s: print("note:", s, file=sys.stderr))
    wall = time.perf_counter() - t0
    row = {
        "model": model,
        "sets": sets,
        "recall@20": run.metrics["test"]["recall@20"],
        "ndcg@20": run.metrics["test"]["ndcg@20"],
        "total_s": wall,
        "fit_s": run.metrics["fit_s"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "run": str(out),
    }
    if run.result is not None:
        hist = run.result.history
        best = run.result.best_epoch
        row.update(
            epochs=len(hist),
            best_epoch=best,
            best_valid=run.result.best_value,
            s_per_epoch=sum(h["train_s"] for h in hist) / len(hist),
            to_best_s=sum(h["train_s"] + h.get("eval_s", 0.0) for h in hist[:best]),
            valid_curve=[(h["epoch"], round(h[config.train.metric], 4)) for h in hist if config.train.metric in h],
        )
    return row


def command(model: str, sets: list[str]) -> str:
    """The ``semrec train`` command that makes the same run folder."""
    parts = ["semrec", "train", "--data", "gowalla", "--model", model, "--split", "given"]
    for s in sets:
        parts += ["--set", s]
    return shlex.join(parts + ["--out", str(DEFAULT_OUT / model)])


def table(rows: list[dict]) -> str:
    lines = [
        "| model | Recall@20 | NDCG@20 | epochs (best) | s/epoch | to best (s) | total wall (s) | peak RSS (MB) | command |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        ep = f"{r['epochs']} ({r['best_epoch']})" if "epochs" in r else "–"
        spe = f"{r['s_per_epoch']:.1f}" if "s_per_epoch" in r else "–"
        tb = f"{r['to_best_s']:.0f}" if "to_best_s" in r else f"{r['fit_s']:.0f} (fit)"
        lines.append(
            f"| {r['model']} | {r['recall@20']:.4f} | {r['ndcg@20']:.4f} | {ep} | {spe} | {tb} | "
            f"{r['total_s']:.0f} | {r['peak_rss_mb']:.0f} | `{command(r['model'], r['sets'])}` |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="graphfilter,xsimgcl", help="comma-separated model names")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="[MODEL:]KEY=VALUE")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="run folders go to OUT/<model>")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, help="also append each row as a JSON line to this file")
    ap.add_argument("--one", help=argparse.SUPPRESS)  # child mode: run this model, print its row
    args = ap.parse_args()
    os.environ.setdefault("SEMREC_DATA_HOME", "/work/shared/data")

    if args.one:
        row = run_one(args.one, sets_for(args.one, args.sets), args.out, args.threads)
        print("ROW " + json.dumps(row), flush=True)
        return

    rows = []
    for model in [m.strip() for m in args.models.split(",") if m.strip()]:
        cmd = [sys.executable, __file__, "--one", model, "--out", str(args.out), "--threads", str(args.threads)]
        for s in args.sets:
            cmd += ["--set", s]
        print(f"== {model}: {shlex.join(cmd)}", file=sys.stderr, flush=True)
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
        found = [line[4:] for line in proc.stdout.splitlines() if line.startswith("ROW ")]
        if proc.returncode != 0 or not found:
            print(f"== {model} failed (exit {proc.returncode})", file=sys.stderr)
            continue
        row = json.loads(found[-1])
        rows.append(row)
        print(f"== {model}: {json.dumps(row)}", file=sys.stderr, flush=True)
        if args.json:
            with args.json.open("a") as f:
                f.write(json.dumps(row) + "\n")
    print(table(rows))


if __name__ == "__main__":
    main()
