"""Validation-driven tuning runs for the graph models, and the rows they produced.

One run::

    python benchmarks/tune_ml100k.py --model lightgcn --set lr=5e-3 --set epochs=300

A final row by name (the configs chosen on validation; see ``PRESETS``)::

    python benchmarks/tune_ml100k.py --preset lightgcn
    python benchmarks/tune_ml100k.py --preset semgraph-rating

Each run trains with ``semrec.pipeline.train_and_save`` (the ``semrec train`` path:
early stopping and model selection on the ``valid`` part carved from train, never on
test) and prints one JSON line: the validation metrics of the best epoch, the test
metrics of that checkpoint, epochs, best epoch and seconds. ``--results FILE`` appends
the line to a JSON-lines log. Runs use one torch thread unless ``--threads`` says
otherwise, so that the quality does not depend on machine load (timings do).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

#: The rows reported for issue #4: (data, split, model, --set pairs). Every value not
#: listed is the (tuned) dataclass default; validation every 5 epochs with a patience of
#: 6 validations is how the tuning runs were made, so the presets pin it.
_EVERY5 = ["eval_every=5", "patience=6"]
PRESETS: dict[str, tuple[str, str, str, list[str]]] = {
    "lightgcn": ("ml-100k", "given:u1", "lightgcn", _EVERY5),
    "xsimgcl": ("ml-100k", "given:u1", "xsimgcl", _EVERY5),
    "semgraph": ("ml-100k", "given:u1", "semgraph", _EVERY5),
    "semgraph-ssl": ("ml-100k", "given:u1", "semgraph",
                     ["alpha=0.96", "id_dropout=0.1", "epochs=80", "eval_every=5", "patience=4"]),
    "semgraph-rating": ("ml-100k", "given:u1", "semgraph",
                        ["model.task=rating", "train.task=rating", "alpha=1.0", "reg=0.01",
                         "id_dropout=0", "epochs=200", "eval_every=2", "patience=8"]),
    "office-lightgcn": ("amazon-office", "leave-one-out", "lightgcn", _EVERY5),
    "office-xsimgcl": ("amazon-office", "leave-one-out", "xsimgcl", _EVERY5),
    "office-semgraph": ("amazon-office", "leave-one-out", "semgraph",
                        ["alpha=0.96", "id_dropout=0.1", "knn_weight=0.2", "epochs=100",
                         "eval_every=5", "patience=4"]),
    "office-semantic": ("amazon-office", "leave-one-out", "semantic", []),
    "office-popularity": ("amazon-office", "leave-one-out", "popularity", []),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS))
    ap.add_argument("--data", default="ml-100k")
    ap.add_argument("--split", default="given:u1")
    ap.add_argument("--model")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="key=value, as `semrec train --set`")
    ap.add_argument("--tag", default="")
    ap.add_argument("--out", default="runs/tune")
    ap.add_argument("--results", help="append the JSON line to this file")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    from semrec.data.load import load_dataset
    from semrec.pipeline import build_config, train_and_save

    if args.preset:
        data, split, model, sets = PRESETS[args.preset]
        sets = sets + args.sets
    else:
        if not args.model:
            ap.error("give --preset or --model")
        data, split, model, sets = args.data, args.split, args.model, args.sets
    config = build_config(model, split=split, sets=list(sets) + ["progress=false"])
    tag = args.tag or args.preset or "-".join([model] + [s.replace("=", "") for s in sets])
    out = Path(args.out) / f"{data}-{tag}"[:200]
    t0 = time.perf_counter()
    run = train_and_save(data, config, out, dataset=load_dataset(data), overwrite=True)
    wall = time.perf_counter() - t0
    m = run.metrics
    valid = {}
    if run.result is not None and run.result.history:
        best = [h for h in run.result.history if h["epoch"] == m["best_epoch"]]
        if best:
            valid = {k: v for k, v in best[0].items() if "@" in k or k in ("rmse", "mae")}
    keep = ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "rmse", "mae")
    line = {
        "tag": tag, "data": data, "split": split, "model": model, "sets": list(sets),
        "valid": {k: round(v, 4) for k, v in valid.items() if k in keep},
        "test": {k: round(v, 4) for k, v in m["test"].items() if k in keep},
        "best_epoch": m["best_epoch"], "epochs_run": m["epochs_run"],
        "fit_s": round(m["fit_s"], 1), "wall_s": round(wall, 1), "threads": args.threads,
    }
    text = json.dumps(line)
    print(text)
    if args.results:
        with open(args.results, "a", encoding="utf-8") as f:
            f.write(text + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
