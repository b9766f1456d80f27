"""Choose a graph filter's settings on the validation part, then (optionally) refit the
choice on train+valid and report it on test: how the ``graphfilter`` and
``graphfilter-text`` defaults and the per-dataset settings in BENCHMARKS.md were chosen.

The search is staged (coordinate-wise), each stage on the validation part of the split
(``given``: 10% of each user's training items carved out; ``leave-one-out``: each user's
second-to-last item) with the model fitted on the training part only, scored by
validation NDCG@20 (``train.metric``'s default; on a ``cold-items`` split ranking only
the held-out validation items, as the test's cold section ranks the held-out test
items), the best of a stage fixing its settings for the next ones (ties: the earlier
setting). The grids were fixed before the runs in BENCHMARKS.md:

1. normalisation: ``user_exponent`` ∈ {0.3, 0.4, 0.5} × ``item_exponent`` ∈ {0.4, 0.5}
   × ``degree_exponent`` ∈ {0.2, 0.3, 0.4, 0.5}, at ChebyCF's published filter
   (``plateau``, φ = 1.5, α = 0.2, k = 512, order 1);
2. text (``graphfilter-text`` only): ``text_weight`` ∈ {0, 0.2, 0.4, 0.6, 0.8} ×
   ``text_k`` ∈ {10, 20, 50};
3. response: ``linear``; ``plateau`` with φ ∈ {1, 1.5, 2}; ``bspm`` with T ∈ {1.5, 2.5,
   3.5}; each with α ∈ {0.1, 0.2, 0.3};
4. size: ``k`` ∈ {256, 512, 1024} × ``order`` ∈ {1, 2}.

Settings that only change the filter (response, α, β, order) reuse the fitted operator
and eigenvectors (:meth:`~semrec.models.graphfilter.GraphFilter.with_filter`); the
others refit. ``--test`` then fits the chosen settings on train+valid (what ``semrec
train --set refit=true`` does; on a ``cold-items`` split, where semrec refuses refit, on
train) and evaluates the test part, with the cold-item section on such a split.
``--references`` adds, for comparison only, ChebyCF at its published Gowalla settings
(``exact_top = false``, order 8: its own form).

    OMP_NUM_THREADS=1 python benchmarks/graphfilter_select.py --data gowalla --split given \\
        --valid-users 8000 --test --references
    python benchmarks/graphfilter_select.py --data amazon-office --split leave-one-out \\
        --model graphfilter-text --test

Prints one line per evaluated setting (validation Recall/NDCG@10/@20), the choice as
``--set`` pairs, and the test line; wall seconds, load average and peak RSS at the end.
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from typing import Any

import numpy as np
import torch

from semrec.config import TextConfig
from semrec.data.load import load_dataset
from semrec.data.split import Split, make_split
from semrec.evaluate.cold import cold_sections
from semrec.evaluate.ranking import evaluate_ranking
from semrec.models import catalog
from semrec.models.graphfilter import GraphFilter, GraphFilterConfig
from semrec.pipeline import model_inputs
from semrec.text.features import text_features

STAGE_NORM = [dict(user_exponent=a, item_exponent=b) for a in (0.3, 0.4, 0.5) for b in (0.4, 0.5)]
STAGE_BETA = [dict(degree_exponent=beta) for beta in (0.2, 0.3, 0.4, 0.5)]
STAGE_TEXT = [dict(text_weight=w, text_k=k) for w in (0.0, 0.2, 0.4, 0.6, 0.8) for k in (10, 20, 50)]
STAGE_RESPONSE = [dict(filter=f, **shape, alpha=a)
                  for f, shapes in (("linear", [{}]),
                                    ("plateau", [dict(flatness=p) for p in (1.0, 1.5, 2.0)]),
                                    ("bspm", [dict(sharpen=t) for t in (1.5, 2.5, 3.5)]))
                  for shape in shapes for a in (0.1, 0.2, 0.3)]
STAGE_SIZE = [dict(k=k, order=o) for k in (256, 512, 1024) for o in (1, 2)]
#: ChebyCF's published filter, the starting point of stage 1 (every setting the search
#: touches is named, so that the search does not depend on the models' defaults)
START = dict(filter="plateau", flatness=1.5, sharpen=2.5, alpha=0.2, k=512, order=1, exact_top=True)
TEXT_START = dict(text_weight=0.5, text_k=20)
#: the published filters at their published Gowalla settings, for comparison only
#: (ChebyCF normalises its whole filter by one β, as this model does; GF-CF and BSPM
#: normalise only their ideal term, which one β cannot express, so they are left out)
REFERENCES = {
    "ChebyCF (K 8, φ 1.5, η 512, α 0.2, β 0.4)": dict(filter="plateau", flatness=1.5, order=8, exact_top=False,
                                                      k=512, alpha=0.2, degree_exponent=0.4, user_exponent=0.5,
                                                      item_exponent=0.5),
}
NORM_KEYS = ("user_exponent", "item_exponent")


class Search:
    """Fits (cached by operator settings) and validation scores of one model on one split."""

    def __init__(self, name: str, split: Split, features, users: np.ndarray | None, svd: dict[str, int]) -> None:
        self.name, self.split, self.features, self.users, self.svd = name, split, features, users, svd
        # on a cold-items split, validation ranks the held-out validation items among
        # themselves, as the test's cold section does with the test's
        self.candidates = None
        if split.cold_items is not None and len(split.valid):
            self.candidates = np.intersect1d(split.cold_items, split.valid.items)
        self.fitted: dict[tuple, GraphFilter] = {}
        self.seen: dict[tuple, dict[str, float]] = {}

    def model(self, settings: dict[str, Any], part: str = "train") -> GraphFilter:
        filt = {k: v for k, v in settings.items() if k in GraphFilterConfig.FILTER_FIELDS}
        op = {k: v for k, v in settings.items() if k not in GraphFilterConfig.FILTER_FIELDS}
        key = (part, tuple(sorted(op.items())))
        if key not in self.fitted:
            cfg = catalog.spec(self.name).config(**{**op, **self.svd})
            model = catalog.build(self.name, self.split.n_users, self.split.n_items, cfg,
                                  model_inputs(self.split, self.features))
            t0 = time.perf_counter()
            self.fitted[key] = model.fit(self.split.matrix(part))
            print(f"  fitted {dict(op)} on {part} in {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)
        return self.fitted[key].with_filter(**filt)

    def valid(self, settings: dict[str, Any]) -> dict[str, float]:
        key = tuple(sorted(settings.items()))
        if key not in self.seen:
            with torch.inference_mode():
                m = evaluate_ranking(self.model(settings), self.split, part="valid", ks=(10, 20), users=self.users,
                                     candidates=self.candidates)
            self.seen[key] = m
            print(f"{fmt(settings):<118} valid R@10 {m['recall@10']:.4f} N@10 {m['ndcg@10']:.4f} "
                  f"R@20 {m['recall@20']:.4f} N@20 {m['ndcg@20']:.4f}", flush=True)
        return self.seen[key]

    def stage(self, best: dict[str, Any], grid: list[dict[str, Any]], title: str) -> dict[str, Any]:
        print(f"\n## {title}", flush=True)
        scored = [(self.valid({**best, **g})["ndcg@20"], i, {**best, **g}) for i, g in enumerate(grid)]
        return max(scored, key=lambda t: (t[0], -t[1]))[2]  # ties: the earlier (simpler) setting


def fmt(settings: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in settings.items())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="gowalla")
    ap.add_argument("--split", default="given")
    ap.add_argument("--model", default="graphfilter", choices=("graphfilter", "graphfilter-text"))
    ap.add_argument("--valid-users", type=int, default=None,
                    help="score validation on this many users (seeded sample); default all")
    ap.add_argument("--svd-iters", type=int, default=GraphFilterConfig.svd_iters)
    ap.add_argument("--svd-oversample", type=int, default=GraphFilterConfig.svd_oversample)
    ap.add_argument("--test", action="store_true", help="refit the choice on train+valid and evaluate test")
    ap.add_argument("--references", action="store_true", help="also score the published filters")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()

    dataset = load_dataset(args.data)
    split = make_split(dataset, args.split)
    features = None
    if catalog.spec(args.model).text:
        features = text_features(dataset, split.items, split.users, TextConfig(knn=0), progress=False)
    valid_users = np.flatnonzero(np.diff(split.matrix("valid").indptr) > 0)
    if args.valid_users and args.valid_users < len(valid_users):
        valid_users = np.sort(np.random.default_rng(0).choice(valid_users, args.valid_users, replace=False))
    print(f"{args.data} {args.split}: {split.n_users} users, {split.n_items} items, "
          f"{len(valid_users)} validation users; model {args.model}", flush=True)
    search = Search(args.model, split, features, valid_users,
                    dict(svd_iters=args.svd_iters, svd_oversample=args.svd_oversample))

    best = dict(START, **(TEXT_START if args.model == "graphfilter-text" else {}))
    best = search.stage(best, [{**n, **b} for n in STAGE_NORM for b in STAGE_BETA],
                        "1. normalisation (user_exponent, item_exponent, degree_exponent)")
    if args.model == "graphfilter-text":
        best = search.stage(best, STAGE_TEXT, "2. text (text_weight, text_k)")
    best = search.stage(best, STAGE_RESPONSE, "3. response (filter, flatness / sharpen, alpha)")
    best = search.stage(best, STAGE_SIZE, "4. size (k, order)")
    chosen = search.valid(best)
    print(f"\nchosen on validation (NDCG@20 {chosen['ndcg@20']:.4f}): "
          + " ".join(f"--set {k}={v}" for k, v in best.items()))
    if args.references:
        print("\n## published settings (for comparison; not chosen here)")
        for label, ref in REFERENCES.items():
            m = search.valid(ref)
            print(f"  {label}: valid R@20 {m['recall@20']:.4f} N@20 {m['ndcg@20']:.4f}")

    if args.test:
        # a cold-items split validates on held-out items: refitting on them would make
        # them warm, so there the choice is evaluated as fitted on train (as semrec does)
        refit = split.cold_items is None
        print(f"\n## test: fitted on {'train+valid' if refit else 'train (no refit on a cold-items split)'}",
              flush=True)
        runs = {"chosen": best, **(REFERENCES if args.references else {})}
        test_split = split.with_valid_in_train() if refit else split
        test_search = Search(args.model, test_split, features, None, search.svd)
        for label, settings in runs.items():
            model = test_search.model(settings)
            with torch.inference_mode():
                m = evaluate_ranking(model, test_split, part="test", ks=(10, 20))
                cold = cold_sections(model, test_split, ks=(10, 20))
            line = " ".join(f"{k} {m[k]:.4f}" for k in ("recall@10", "ndcg@10", "recall@20", "ndcg@20"))
            print(f"  {label}: test {line}")
            if cold.get("cold"):
                c = cold["cold"]
                print(f"  {label}: cold " + " ".join(f"{k} {c[k]:.4f}" for k in ("recall@20", "ndcg@20")))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nwall {time.perf_counter() - t_start:.0f}s, load average {os.getloadavg()[0]:.1f}, "
          f"peak RSS {peak:.0f} MiB, threads {torch.get_num_threads()}")


if __name__ == "__main__":
    main()
