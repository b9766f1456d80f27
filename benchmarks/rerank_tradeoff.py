"""Accuracy against diversity, and against the long tail, as the re-ranking knobs move (issue #19).

    python benchmarks/rerank_tradeoff.py [--runs runs/tradeoff] [--models semgraph,itemknn] [--pool 100]

For amazon-office (``leave-one-out``) and ml-100k (``given:u1``), and each model, a run is
trained at the model's defaults into ``RUNS/DATASET-MODEL`` (a run already there is
taken as it is; ``--retrain`` replaces it). Each test user's best ``--pool`` unseen items
are ranked once; then the pool is re-ranked for every setting of one knob at a time
(:func:`semrec.models.rerank.rerank`):

* ``diversity`` λ (maximal marginal relevance) from 0 to 1;
* ``novelty`` β (inverse propensity) from 0 to 3;

and the lists measured by :func:`semrec.evaluate.ranking.ranking_metrics` (the same code
as ``semrec evaluate``). Writes ``benchmarks/rerank_tradeoff.json`` (every number) and
``benchmarks/rerank_tradeoff.png`` (NDCG@10 against diversity@10 and against tail@10),
and prints the markdown tables of BENCHMARKS.md.

Diversity is *measured* in one space for every model of a dataset, the item text vectors
(MiniLM, read from the embedding cache), so that curves compare. Each model *re-ranks*
in its own space as ``semrec serve`` and ``semrec evaluate`` do (semgraph: the text
vectors; ItemKNN, which has neither text nor vectors: co-occurrence); ItemKNN is also
shown re-ranking on the text vectors (``itemknn, MMR on text``), what a deployment
that keeps the text beside an ID-only model could do, and semgraph with
``redundancy="mean"`` (``semgraph, mean similarity``: the mean instead of MMR's max
similarity to the list so far).

Why diversity costs accuracy here: ``likeness`` in the JSON compares, over the lists
that hit the held-out item before re-ranking, that item's mean cosine to the other
items of its list with the other items' own, and with the mean over all lists.

The done-when of the issue is read off amazon-office: the largest diversity gain at a
relative NDCG@10 loss of at most 5%. Its paired standard error (per-user NDCG@10
differences against the unranked lists) is printed beside it: with one test item per
user, NDCG@10 on 4,905 users moves by a few percent from noise alone.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from semrec.artifacts.run import load_run
from semrec.config import TextConfig
from semrec.data.load import load_dataset
from semrec.evaluate.metrics import intra_list_diversity, ndcg_at_k
from semrec.evaluate.ranking import evaluated_users, ranking_metrics
from semrec.models.rerank import ItemSpace, item_counts, item_space, rerank
from semrec.models.topk import topk
from semrec.pipeline import build_config, train_and_save
from semrec.text.features import text_features

DATASETS = {"amazon-office": "leave-one-out", "ml-100k": "given:u1"}
DIVERSITY = [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
NOVELTY = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0]
K = 10
BATCH = 1024
HERE = Path(__file__).resolve().parent


def pools(run, pool: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(users (N,), scores (N, P), items (N, P))``: every test user's best ``pool`` unseen items."""
    split = run.split
    users = evaluated_users(split, "test")
    history = split.history("test", "timestamps" if getattr(run.scorer, "ordered", False) else "ones")
    out_s, out_i = [], []
    for start in range(0, len(users), BATCH):
        u = users[start : start + BATCH]
        seen = history[u]
        with torch.no_grad():
            scores = run.scorer.score(u, seen).float()
        values, idx = topk(scores, pool, seen=seen)
        out_s.append(values.numpy().astype(np.float64))
        out_i.append(idx.numpy())
    return users, np.concatenate(out_s), np.concatenate(out_i)


def per_user_ndcg(split, users: np.ndarray, lists: np.ndarray) -> np.ndarray:
    target = split.matrix("test")
    rel = [set(target.indices[target.indptr[u] : target.indptr[u + 1]].tolist()) for u in users]
    hits = np.array([[i in r for i in row] for row, r in zip(lists[:, :K].tolist(), rel)])
    return ndcg_at_k(hits, np.array([len(r) for r in rel]))


def likeness(split, users: np.ndarray, lists: np.ndarray, space: ItemSpace) -> dict:
    """How alike a hit is to the rest of its list, against the list's other items."""
    sim = space.similarity(lists[:, :K])  # (N, K, K)
    target = split.matrix("test")
    off = ~np.eye(K, dtype=bool)
    hit_rest, other_rest = [], []
    for row, u in enumerate(users):
        rel = set(target.indices[target.indptr[u] : target.indptr[u + 1]].tolist())
        pos = [j for j, i in enumerate(lists[row, :K].tolist()) if i in rel]
        if not pos:
            continue
        rest = [sim[row, j][off[j]].mean() for j in range(K)]
        hit_rest += [rest[j] for j in pos]
        other_rest += [rest[j] for j in range(K) if j not in pos]
    return {"lists_with_a_hit": len(hit_rest), "hit_to_rest": float(np.mean(hit_rest)),
            "others_to_rest": float(np.mean(other_rest)), "all_lists_pairs": float(sim[:, off].mean())}


def sweep(run, text: ItemSpace, own: ItemSpace, users, scores, items, knob: str, values: list[float],
          redundancy: str = "max") -> list[dict]:
    split = run.split
    counts = item_counts(split.train.items, split.n_items)
    base_ndcg = None
    rows = []
    for v in values:
        t0 = time.perf_counter()
        kwargs = {"diversity": v, "redundancy": redundancy} if knob == "diversity" else {"novelty": v}
        _, lists = rerank(scores, items, K, space=own, counts=counts, **kwargs)
        rerank_s = time.perf_counter() - t0
        m = ranking_metrics(lists, split, "test", ks=(K,), beyond=True, space=text)
        listed = lists >= 0
        own_div = intra_list_diversity(own.similarity(lists), listed)
        ndcg_u = per_user_ndcg(split, users, lists)
        if base_ndcg is None:
            base_ndcg = ndcg_u
        diff = ndcg_u - base_ndcg
        rows.append({
            knob: v,
            **{key: val for key, val in m.items() if key != "beyond"},
            f"diversity_{own.name}@{K}": float(np.nanmean(own_div)),
            "ndcg_change_se@10": float(diff.std(ddof=1) / math.sqrt(len(diff))),
            "rerank_s": rerank_s,
        })
        print(f"  {knob}={v:<5g} ndcg@10 {m['ndcg@10']:.4f}  diversity@10 {m['diversity@10']:.4f}  "
              f"tail@10 {m['tail@10']:.4f}  ({rerank_s:.1f}s)", file=sys.stderr)
    return rows


def best_setting(rows: list[dict], knob: str, metric: str, max_loss: float = 0.05) -> dict | None:
    """The setting with the largest ``metric`` whose NDCG@10 is within ``max_loss`` of the first row's."""
    base = rows[0]
    ok = [r for r in rows[1:] if r["ndcg@10"] >= (1 - max_loss) * base["ndcg@10"]]
    if not ok:
        return None
    r = max(ok, key=lambda r: r[metric])
    return {knob: r[knob], "ndcg@10": r["ndcg@10"], "ndcg_rel": r["ndcg@10"] / base["ndcg@10"] - 1,
            "ndcg_change_se": r["ndcg_change_se@10"], metric: r[metric],
            "metric_rel": r[metric] / base[metric] - 1 if base[metric] else float("nan")}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(results)
    fig, axes = plt.subplots(2, len(datasets), figsize=(6 * len(datasets), 9), squeeze=False)
    for col, data in enumerate(datasets):
        for row, (knob, metric, label) in enumerate((("diversity", "diversity@10", "intra-list diversity@10 (text)"),
                                                      ("novelty", "tail@10", "long-tail share@10"))):
            ax = axes[row][col]
            for name, curves in results[data]["models"].items():
                pts = curves.get(knob)
                if not pts:
                    continue
                xs, ys = [p[metric] for p in pts], [p["ndcg@10"] for p in pts]
                line, = ax.plot(xs, ys, marker="o", ms=3, label=name)
                for p in pts:
                    if p[knob] in (0.0, 0.2, 0.5, 1.0, 3.0):
                        ax.annotate(f"{p[knob]:g}", (p[metric], p["ndcg@10"]), textcoords="offset points",
                                    xytext=(3, 3), fontsize=7, color=line.get_color())
            first = next(iter(results[data]["models"].values())).get(knob)
            if knob == "diversity" and first:  # the bar, for the first model
                ax.axvline(1.2 * first[0][metric], color="grey", ls="--", lw=0.8)
                ax.axhline(0.95 * first[0]["ndcg@10"], color="grey", ls=":", lw=0.8)
                ax.text(1.2 * first[0][metric], ax.get_ylim()[0], " +20% diversity", fontsize=7, color="grey",
                        va="bottom")
                ax.text(ax.get_xlim()[0], 0.95 * first[0]["ndcg@10"], " -5% NDCG", fontsize=7, color="grey",
                        va="top")
            ax.set_xlabel(label)
            ax.set_ylabel("NDCG@10")
            ax.set_title(f"{data} ({DATASETS[data]}): {'MMR λ' if knob == 'diversity' else 'inverse propensity β'}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", default="runs/tradeoff", help="where the runs are (trained when missing)")
    ap.add_argument("--models", default="semgraph,itemknn")
    ap.add_argument("--data", default=",".join(DATASETS))
    ap.add_argument("--pool", type=int, default=100)
    ap.add_argument("--retrain", action="store_true", help="train again even where a run exists")
    ap.add_argument("--out", default=str(HERE / "rerank_tradeoff"), help="output path without extension")
    ap.add_argument("--plot-only", action="store_true", help="redraw the PNG from the JSON already written")
    args = ap.parse_args()
    if args.plot_only:
        out = Path(args.out)
        plot(json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))["results"], out.with_suffix(".png"))
        return
    torch.set_num_threads(1)
    results: dict = {}
    for data in args.data.split(","):
        split_spec = DATASETS[data]
        dataset = load_dataset(data)
        results[data] = {"split": split_spec, "pool": args.pool, "models": {}, "commands": []}
        text = None
        for name in args.models.split(","):
            out = Path(args.runs) / f"{data}-{name}"
            command = f"semrec train --data {data} --model {name} --split {split_spec} --out {out}"
            results[data]["commands"].append(command)
            if args.retrain or not (out / "run.json").is_file():
                print(f"training: {command}", file=sys.stderr)
                train_and_save(data, build_config(name, split=split_spec, sets=["progress=false"]), out,
                               dataset=dataset, overwrite=True)
            run = load_run(out)
            if text is None:  # one measuring space per dataset: the item text vectors
                feats = text_features(dataset, run.split.items, None, TextConfig(knn=0), progress=False)
                text = ItemSpace("text", feats.items)
            own = item_space(run.model, run.scorer, run.train_matrix())
            print(f"{data} {name}: {run.metrics.get('fit_s', float('nan')):.0f}s fit, re-ranking in the "
                  f"{own.name} space", file=sys.stderr)
            users, scores, items = pools(run, args.pool)
            variants = {name: (own, "max")}
            variants[f"{name}, mean similarity" if own.name == "text" else f"{name}, MMR on text"] = \
                (own, "mean") if own.name == "text" else (text, "max")
            for label, (space, redundancy) in variants.items():
                curves = results[data]["models"].setdefault(label, {"space": space.name, "redundancy": redundancy})
                curves["diversity"] = sweep(run, text, space, users, scores, items, "diversity", DIVERSITY,
                                            redundancy)
                if label == name:  # popularity re-ranking does not read a space
                    curves["novelty"] = sweep(run, text, space, users, scores, items, "novelty", NOVELTY)
            results[data]["models"][name]["fit_s"] = run.metrics.get("fit_s")
            results[data]["models"][name]["likeness"] = likeness(run.split, users, items, text)
    summary = {data: {label: {"diversity": best_setting(c["diversity"], "diversity", "diversity@10"),
                              **({"novelty": best_setting(c["novelty"], "novelty", "tail@10")} if "novelty" in c else {})}
                      for label, c in r["models"].items()} for data, r in results.items()}
    out = Path(args.out)
    out.with_suffix(".json").write_text(json.dumps({"k": K, "results": results, "within_5pct": summary},
                                                   indent=1) + "\n", encoding="utf-8")
    plot(results, out.with_suffix(".png"))
    print(f"wrote {out.with_suffix('.json')} and {out.with_suffix('.png')}\n")
    for data, r in results.items():
        print(f"### {data}, `{r['split']}` (pool {r['pool']}, K = {K})\n")
        print("| model | knob | NDCG@10 | diversity@10 (text) | tail@10 | novelty@10 | coverage@10 | gini@10 |")
        print("|---|---|---|---|---|---|---|---|")
        for label, c in r["models"].items():
            for knob in ("diversity", "novelty"):
                for p in c.get(knob, []):
                    if p[knob] in (0.0, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0) and (knob == "diversity" or p[knob] > 0):
                        print(f"| {label} | {knob} {p[knob]:g} | {p['ndcg@10']:.4f} | {p['diversity@10']:.4f} | "
                              f"{p['tail@10']:.4f} | {p['novelty@10']:.2f} | {p['coverage@10']:.4f} | "
                              f"{p['gini@10']:.4f} |")
        print()
        for label, c in r["models"].items():
            if "likeness" in c:
                lk = c["likeness"]
                print(f"* {label}: over the {lk['lists_with_a_hit']} lists that hit, the held-out item's mean "
                      f"cosine to the rest of its list is {lk['hit_to_rest']:.3f}; the other items' "
                      f"{lk['others_to_rest']:.3f}; all lists' pairs {lk['all_lists_pairs']:.3f}")
        for label, best in summary[data].items():
            for knob, b in best.items():
                if b is None:
                    print(f"* {label}, {knob}: no setting keeps NDCG@10 within 5%")
                    continue
                metric = "diversity@10" if knob == "diversity" else "tail@10"
                print(f"* {label}, {knob} {b[knob]:g}: {metric} {b['metric_rel']:+.1%}, NDCG@10 "
                      f"{b['ndcg_rel']:+.1%} (paired s.e. of the change {b['ndcg_change_se']:.4f})")
        print()


if __name__ == "__main__":
    main()
