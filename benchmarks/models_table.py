"""Train several models with one protocol and print a markdown results table.

    python benchmarks/models_table.py --data ml-100k --split given:u1 \
        --models popularity,itemknn,mf [--set mf:epochs=100] [--out runs/bench]

Each row is one `semrec train` run (same data, split, seeds); the command that
reproduces a row is printed under the table. On a split with cold entities
(``cold-items:F``, ``cold-users:F/N``) the table gains the cold section's columns
(held-out items ranked among themselves, or held-out users scored from N items).
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

from semrec.data.load import load_dataset
from semrec.pipeline import build_config, train_and_save


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", required=True)
    ap.add_argument("--split", default="given")
    ap.add_argument("--models", required=True, help="comma-separated model names")
    ap.add_argument("--set", dest="sets", action="append", default=[],
                    help="MODEL:key=value (one model) or key=value (every model)")
    ap.add_argument("--k", default="10,20")
    ap.add_argument("--out", default="runs/bench")
    args = ap.parse_args()
    ks = [int(k) for k in args.k.split(",")]
    dataset = load_dataset(args.data)
    rows, commands = [], []
    for name in args.models.split(","):
        sets = [s.split(":", 1)[1] for s in args.sets if s.startswith(f"{name}:")]
        sets += [s for s in args.sets if ":" not in s.split("=", 1)[0]]
        config = build_config(name, split=args.split, sets=sets + ["progress=false"])
        out = Path(args.out) / f"{args.data}-{name}"
        t0 = time.perf_counter()
        run = train_and_save(args.data, config, out, dataset=dataset, overwrite=True)
        wall = time.perf_counter() - t0
        m = run.metrics["test"]
        epochs = run.metrics.get("epochs_run")
        per_epoch = (run.metrics["fit_s"] / epochs) if epochs else None
        cold = run.metrics.get("cold") or {}
        rows.append((name, *[m[f"{metric}@{k}"] for k in ks for metric in ("recall", "ndcg")],
                     *[cold.get(f"{metric}@{k}", float("nan")) for k in ks for metric in ("recall", "ndcg")],
                     run.metrics["fit_s"], per_epoch, run.metrics.get("best_epoch"), wall))
        set_args = " ".join(f"--set {s}" for s in sets)
        commands.append(f"semrec train --data {args.data} --model {name} --split {args.split} {set_args} "
                        f"--out {out}".replace("  ", " "))
        print(f"done {name}: " + ", ".join(f"{k}={v:.4f}" for k, v in m.items() if "@20" in k), file=sys.stderr)
    head = ["model"] + [f"{metric}@{k}" for k in ks for metric in ("Recall", "NDCG")] + \
        [f"cold {metric}@{k}" for k in ks for metric in ("Recall", "NDCG")] + \
        ["fit s", "s/epoch", "best epoch", "wall s"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        cells = [r[0]] + [f"{v:.4f}" for v in r[1:1 + 4 * len(ks)]]
        fit_s, per_epoch, best, wall = r[1 + 4 * len(ks):]
        cells += [f"{fit_s:.1f}", "-" if per_epoch is None else f"{per_epoch:.2f}",
                  "-" if best is None else str(best), f"{wall:.1f}"]
        print("| " + " | ".join(cells) + " |")
    print()
    for c in commands:
        print(f"    {c}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
