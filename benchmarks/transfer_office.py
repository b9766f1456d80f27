"""Zero-shot transfer: a text-only semgraph run ranks a catalogue it never saw.

amazon-office is cut by the second level of its category path (40 categories, e.g.
"Labels", "Paper", "Printer Ink & Toner") into two parts of about equal interaction
counts (categories assigned largest first to the smaller part). Each part keeps its own
items and, per user, the interactions with them in file order (users with fewer than 3
left are dropped); both are written as Amazon JSON pairs under ``--work`` so that the
ordinary reader, template and ``leave-one-out`` split apply. Then, on the same split
and evaluator:

* ``semgraph --set ids=false`` trained on part A, evaluated on part B without training
  (``semrec evaluate RUN --data PART_B --split leave-one-out``): zero-shot;
* part B's own ``popularity`` and ``semantic`` (no training needed) and ``semgraph``
  trained on part B (the in-domain reference);

and the same with the parts swapped. One JSON line per (direction, model)::

    python benchmarks/transfer_office.py [--work /tmp/office-parts] [--set epochs=60]
"""
from __future__ import annotations

import argparse
import json
import os
from collections import Counter
from pathlib import Path


def write_parts(work: Path) -> tuple[Path, Path]:
    """The two category parts of amazon-office as Amazon JSON pair folders."""
    from semrec.data.home import ensure_dataset

    source = ensure_dataset("amazon-office", download=False)
    items = json.loads((source / "Office.item.json").read_text())
    inter = json.loads((source / "Office.inter.json").read_text())
    counts = Counter(str(i) for seq in inter.values() for i in seq)

    def category(meta: dict) -> str:
        parts = [p.strip() for p in str(meta.get("categories", "")).split(",")]
        return parts[1] if len(parts) > 1 else "(none)"

    size: Counter = Counter()
    for item, meta in items.items():
        size[category(meta)] += counts[item]
    groups: tuple[set[str], set[str]] = (set(), set())
    totals = [0, 0]
    for cat, n in size.most_common():  # largest first to the smaller part
        side = 0 if totals[0] <= totals[1] else 1
        groups[side].add(cat)
        totals[side] += n
    folders = []
    for name, cats in zip("AB", groups):
        keep = {i for i, meta in items.items() if category(meta) in cats}
        seqs = {u: [i for i in seq if str(i) in keep] for u, seq in inter.items()}
        seqs = {u: s for u, s in seqs.items() if len(s) >= 3}
        folder = work / f"office-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"Office{name}.inter.json").write_text(json.dumps(seqs))
        (folder / f"Office{name}.item.json").write_text(json.dumps({i: items[i] for i in keep}))
        (folder / "categories.json").write_text(json.dumps(sorted(cats)))
        folders.append(folder)
    return folders[0], folders[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", default="/tmp/office-parts")
    ap.add_argument("--set", dest="sets", action="append", default=[], help="semgraph --set pairs")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    torch.set_num_threads(args.threads)
    from semrec.artifacts.run import load_run
    from semrec.evaluate.ranking import evaluate_ranking
    from semrec.pipeline import build_config, train_and_save, transfer_run

    work = Path(args.work)
    part_a, part_b = write_parts(work)
    split = "leave-one-out"
    keys = ("recall@10", "ndcg@10", "recall@20", "ndcg@20")

    def row(direction: str, model: str, metrics: dict, **extra) -> None:
        print(json.dumps({"direction": direction, "model": model, **{k: round(metrics[k], 4) for k in keys},
                          "n_users": metrics.get("n_users"), **extra}), flush=True)

    def train(data: Path, model: str, out: Path, sets: list[str]):
        config = build_config(model, split=split, sets=["progress=false", "tensorboard=false", *sets])
        return train_and_save(str(data), config, out, overwrite=True)

    for source, target in ((part_a, part_b), (part_b, part_a)):
        direction = f"{source.name} -> {target.name}"
        text_run = work / "runs" / f"text-only-{source.name}"
        train(source, "semgraph", text_run, ["ids=false", *args.sets])
        moved = transfer_run(load_run(text_run), target, split)
        row(direction, "semgraph ids=false (zero-shot)", evaluate_ranking(moved.scorer, moved.split, "test"))
        for model, sets in (("popularity", []), ("semantic", []), ("semgraph", list(args.sets))):
            trained = train(target, model, work / "runs" / f"{model}-{target.name}", sets)
            row(direction, f"{model} (trained on {target.name})", {**trained.metrics["test"],
                                                                   "n_users": trained.metrics["n_test_users"]})


if __name__ == "__main__":
    main()
