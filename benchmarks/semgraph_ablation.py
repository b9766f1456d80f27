"""SemGraph ablations: each row turns one part off (or one option on) at the defaults.

    python benchmarks/semgraph_ablation.py --data amazon-office --split leave-one-out
    python benchmarks/semgraph_ablation.py --data ml-100k --split given:u1 --rows defaults,mean,attention
    python benchmarks/semgraph_ablation.py --rows defaults --set alpha=0.96   # any --set for every row

Every row trains through the pipeline's own fit (early stopping on validation NDCG@20,
the checkpoint of the best validation epoch) and prints one JSON line: the validation
NDCG@20 that chose the checkpoint, test Recall/NDCG@10/20, the best epoch, epochs run
and training seconds per epoch. ``--jobs 2`` runs two rows at a time (each on one torch
thread); timings are then not comparable across runs, quality figures are.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

#: name -> extra --set pairs over the defaults
ROWS: dict[str, list[str]] = {
    "defaults": [],
    "no text": ["use_text=false"],
    "no graph": ["layers=0"],
    "no ID": ["ids=false"],
    "no ID dropout": ["id_dropout=0"],
    "no text skip": ["text_skip=false"],
    "+ neighbours": ["knn_weight=0.2"],
    "no transitions": ["transition_weight=0"],
    "+ contrast": ["alpha=0.96"],
    "+ user ID": ["user_ids=true"],
    "mean": ["user_tower=mean"],
    "attention": ["user_tower=attention"],
    "transformer": ["user_tower=transformer"],
}


def run_row(data: str, split: str, name: str, sets: list[str]) -> dict:
    import torch

    from semrec.data.load import load_dataset
    from semrec.data.split import make_split
    from semrec.evaluate.ranking import evaluate_ranking
    from semrec.models import catalog
    from semrec.pipeline import build_config, fit_model, model_inputs, resolve_for_split
    from semrec.text.features import text_features
    from semrec.train.loop import seed_everything

    torch.set_num_threads(1)
    config = build_config("semgraph", split=split, sets=[*sets, "progress=false", "tensorboard=false"])
    dataset = load_dataset(data)
    sp = make_split(dataset, config.data.split, seed=config.data.split_seed)
    config = resolve_for_split(config, sp)
    features = text_features(dataset, sp.items, sp.users, config.text, progress=False)
    seed_everything(config.train.seed)
    model = catalog.build("semgraph", sp.n_users, sp.n_items, config.model_params, model_inputs(sp, features))
    t0 = time.perf_counter()
    scorer, result, _, sp = fit_model(model, sp, config, features, None, None)
    test = evaluate_ranking(scorer, sp, part="test", ks=(10, 20))
    return {
        "row": name, "data": data, "split": split, "sets": sets,
        "tower": config.model_params.user_tower, "valid_ndcg@20": round(result.best_value, 4),
        **{k: round(test[k], 4) for k in ("recall@10", "ndcg@10", "recall@20", "ndcg@20")},
        "best_epoch": result.best_epoch, "epochs": result.epochs_run,
        "s_per_epoch": round(result.train_s / max(result.epochs_run, 1), 2),
        "wall_s": round(time.perf_counter() - t0, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="amazon-office")
    ap.add_argument("--split", default="leave-one-out")
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, from: {', '.join(ROWS)}")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="key=value for every row")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one row in this process
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.one:
        print(json.dumps(run_row(args.data, args.split, args.one, ROWS[args.one] + args.sets)), flush=True)
        return
    names = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [n for n in names if n not in ROWS]
    if unknown:
        ap.error(f"unknown row(s) {unknown}; known: {', '.join(ROWS)}")
    pending = list(names)
    running: list[subprocess.Popen] = []
    base = [sys.executable, __file__, "--data", args.data, "--split", args.split]
    for s in args.sets:
        base += ["--set", s]
    while pending or running:
        while pending and len(running) < args.jobs:
            running.append(subprocess.Popen([*base, "--one", pending.pop(0)]))
        running[0].wait()
        running = [p for p in running if p.poll() is None]


if __name__ == "__main__":
    main()
