"""How LightGCN's time and memory grow with the graph: synthetic power-law bipartite graphs
from 0.25x to 10x Gowalla, plus real Gowalla, and half-precision serving embeddings.

Scale ``s`` has ``s × 29,858`` users, ``s × 40,981`` items and about ``s × 810k``
interactions (Gowalla's ``train.txt`` sizes); 90% of each graph's interactions train, 10%
are the test part. Degrees are power-law on both sides, calibrated on Gowalla's ``given``
training graph (users: median 14, mean 24, max 730; items: median 11, mean 18, max 1,273;
the top 1% of items hold 13% of interactions):

* users: Pareto (``x_min = 10``, ``alpha = 1.7``) degrees, capped at 1,000;
* items: Zipf popularity ``w_r ∝ r^-0.5`` over a random ranking of the items (the item
  degree distribution is then a power law with exponent ``1 + 1/0.5 = 3``);
* each user draws its degree's worth of items from that popularity, duplicates dropped.

Every measurement runs in a fresh child process (``child`` sub-command), so the peak RSS
(``VmHWM``, = ``ru_maxrss``) is that configuration's alone:

* ``train``: full-graph LightGCN (64-d, 3 layers, batch 2048, BPR, 1 negative, Adam):
  one warm-up batch, then ``--batches`` timed batches; seconds per epoch are EXTRAPOLATED
  as ``s/batch × ceil(train interactions / 2048)`` (a full epoch at 10x takes hours on
  these cores);
* ``neighbor``: the same with neighbour sampling (fanouts 10,10,10,
  :mod:`semrec.train.neighbor`), s/batch extrapolated the same way; ``neighbor-sparse``
  the same with sparse embedding gradients and ``SparseAdam`` (only the block's rows);
* ``eval``: full-ranking evaluation (:func:`semrec.evaluate.ranking.evaluate_ranking`,
  history excluded, user batches from a 512 MiB score budget) of the first
  ``--eval-batches`` user batches, extrapolated linearly to every test user.

    OMP_NUM_THREADS=1 python benchmarks/scale.py run --scales 0.25,0.5,1,2,10,gowalla
    python benchmarks/scale.py plot                  # benchmarks/scale.png from the JSON
    python benchmarks/scale.py precision --run /tmp/gowalla-runs/lightgcn

Results are appended as JSON lines to ``--results`` (default ``benchmarks/scale.jsonl``).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

HERE = Path(__file__).resolve().parent
GOWALLA = {"n_users": 29_858, "n_items": 40_981, "n_edges": 810_128}
TEST_FRACTION = 0.1


# --------------------------------------------------------------------------- generator


def power_law_graph(scale: float, seed: int = 0, *, user_xmin: float = 10.0, user_alpha: float = 1.7,
                    item_zipf: float = 0.5, user_cap: int = 1000) -> sp.csr_matrix:
    """A binary ``(n_users, n_items)`` CSR with power-law degrees on both sides.

    ``n_users = round(scale · 29,858)``, ``n_items = round(scale · 40,981)``; user degrees
    ``⌊x_min · (1 + Lomax(alpha))⌋`` (Pareto, mean ``alpha·x_min/(alpha-1)`` ≈ 24), capped at
    ``min(user_cap, n_items / 4)`` (Gowalla's most active user has 730) and rescaled so the expected total is ``scale · 810k``; items drawn by Zipf
    popularity ``rank^-item_zipf``; duplicate (user, item) pairs are dropped (about 2%).
    """
    rng = np.random.default_rng(seed)
    n_users = max(2, round(scale * GOWALLA["n_users"]))
    n_items = max(2, round(scale * GOWALLA["n_items"]))
    target = scale * GOWALLA["n_edges"]
    deg = user_xmin * (1.0 + rng.pareto(user_alpha, n_users))  # (n_users,) Pareto
    deg = np.minimum(deg, min(user_cap, n_items / 4))
    deg = np.maximum(1, np.round(deg * target / deg.sum())).astype(np.int64)
    w = np.arange(1, n_items + 1, dtype=np.float64) ** -item_zipf  # Zipf by rank
    cdf = np.cumsum(w[rng.permutation(n_items)])  # popularity in random item order
    cdf /= cdf[-1]
    users = np.repeat(np.arange(n_users, dtype=np.int64), deg)
    items = np.minimum(np.searchsorted(cdf, rng.random(users.shape[0])), n_items - 1)
    keys = np.unique(users * n_items + items)  # sorted, duplicates dropped
    rows, cols = keys // n_items, keys % n_items
    return sp.csr_matrix((np.ones(len(keys), np.float32), (rows, cols)), shape=(n_users, n_items))


def synthetic_split(scale: float, seed: int = 0):
    """A :class:`~semrec.data.split.Split` of :func:`power_law_graph`: 10% of every user's
    interactions (at least one when the user has two) are test, the rest train."""
    from semrec.data.dataset import Interactions
    from semrec.data.idmap import IdMap
    from semrec.data.split import Split

    m = power_law_graph(scale, seed).tocoo()
    rng = np.random.default_rng(seed + 1)
    order = np.lexsort((rng.random(m.nnz), m.row))  # users grouped, random within a user
    rows, cols = m.row[order].astype(np.int64), m.col[order].astype(np.int64)
    counts = np.bincount(rows, minlength=m.shape[0])
    starts = np.cumsum(counts) - counts
    rank = np.arange(len(rows)) - np.repeat(starts, counts)
    n_test = np.where(counts >= 2, np.maximum(1, np.floor(counts * TEST_FRACTION)), 0)
    is_test = rank < np.repeat(n_test, counts)
    empty = np.zeros(0, np.int64)
    return Split(
        spec=f"synthetic:{scale}",
        users=IdMap(f"u{i}" for i in range(m.shape[0])),
        items=IdMap(f"i{i}" for i in range(m.shape[1])),
        train=Interactions(rows[~is_test], cols[~is_test]),
        valid=Interactions(empty, empty),
        test=Interactions(rows[is_test], cols[is_test]),
    )


def load_split(name: str):
    if name == "gowalla":
        from semrec.data.load import load_dataset
        from semrec.data.split import make_split

        return make_split(load_dataset("gowalla"), "given")
    return synthetic_split(float(name))


# --------------------------------------------------------------------------- measurements


def peak_rss_mb() -> float:
    """Peak resident set of this process (``VmHWM``), MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(scale: str, phase: str, batches: int, eval_batches: int, budget_mb: float,
          fanouts: list[int]) -> dict:
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    t0 = time.perf_counter()
    split = load_split(scale)
    train = split.matrix("train")
    gen_s = time.perf_counter() - t0
    du, di = train.getnnz(axis=1), train.getnnz(axis=0)
    out = {
        "scale": scale, "phase": phase, "n_users": split.n_users, "n_items": split.n_items,
        "train_edges": int(train.nnz), "test_edges": len(split.test), "build_s": round(gen_s, 2),
        "user_deg_median": float(np.median(du)), "user_deg_max": int(du.max()),
        "item_deg_median": float(np.median(di)), "item_deg_max": int(di.max()),
        "rss_after_data_mb": round(peak_rss_mb(), 1),
    }
    from semrec.graph.interaction import InteractionGraph
    from semrec.models.lightgcn import LightGCN

    graph = InteractionGraph(train)
    model = LightGCN(split.n_users, split.n_items, dim=64, layers=3, reg=1e-4)
    batch_size = 2048
    per_epoch = math.ceil(train.nnz / batch_size)
    if phase in ("train", "neighbor", "neighbor-sparse"):
        from semrec.graph.sampling import NeighborSampler
        from semrec.train.neighbor import block_loss
        from semrec.train.sampler import NegativeSampler, ranking_batches

        rng = np.random.default_rng(0)
        sparse = phase == "neighbor-sparse"
        opt = torch.optim.SparseAdam(list(model.parameters()), lr=1e-3) if sparse else \
            torch.optim.Adam(model.parameters(), lr=1e-3)
        neighbors = NeighborSampler(train, fanouts, rng) if phase.startswith("neighbor") else None
        it = ranking_batches(train, batch_size, 1, rng, NegativeSampler(train, rng))
        times, nodes, edges = [], [], []
        for step in range(batches + 1):
            batch = next(it)
            t = time.perf_counter()
            if neighbors is None:
                terms = model.loss(batch, graph)
            else:
                terms = block_loss(model, neighbors, batch, sparse_grad=sparse)
                nodes.append(float(terms["block_nodes"]))
                edges.append(float(terms["block_edges"]))
            opt.zero_grad(set_to_none=True)
            terms["loss"].backward()
            opt.step()
            if step > 0:  # the first batch builds the CSR matrices and warms up
                times.append(time.perf_counter() - t)
        s_batch = float(np.median(times))
        out.update({
            "batches_timed": batches, "s_per_batch": round(s_batch, 4), "batches_per_epoch": per_epoch,
            "s_per_epoch_extrapolated": round(s_batch * per_epoch, 1),
        })
        if neighbors is not None:
            out.update({"fanouts": fanouts, "block_nodes_mean": round(float(np.mean(nodes))),
                        "block_edges_mean": round(float(np.mean(edges)))})
    elif phase == "eval":
        from semrec.evaluate.ranking import default_batch_size, evaluate_ranking

        t = time.perf_counter()
        scorer = model.scorer(graph)  # full-graph propagation, no gradients
        scorer_s = time.perf_counter() - t
        test_users = np.flatnonzero(split.matrix("test").getnnz(axis=1))
        ub = default_batch_size(split.n_items, budget_mb)
        chosen = test_users[: ub * eval_batches]
        t = time.perf_counter()
        res = evaluate_ranking(scorer, split, "test", ks=(20,), memory_budget_mb=budget_mb, users=chosen)
        eval_s = time.perf_counter() - t
        out.update({
            "budget_mb": budget_mb, "users_per_batch": ub, "users_timed": len(chosen),
            "test_users": len(test_users), "scorer_s": round(scorer_s, 2), "eval_s_timed": round(eval_s, 2),
            "eval_s_extrapolated": round(scorer_s + eval_s * len(test_users) / len(chosen), 1),
            "recall@20_random_init": round(res["recall@20"], 4),
        })
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    out["wall_s"] = round(time.perf_counter() - t0, 1)
    return out


def run(args: argparse.Namespace) -> None:
    results = Path(args.results)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    for scale in args.scales.split(","):
        for phase in args.phases.split(","):
            cmd = [sys.executable, __file__, "child", "--scale", scale, "--phase", phase,
                   "--batches", str(args.batches), "--eval-batches", str(args.eval_batches),
                   "--budget-mb", str(args.budget_mb), "--fanouts", args.fanouts]
            t = time.perf_counter()
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=args.timeout)
            if proc.returncode != 0:
                print(f"{scale} {phase}: failed after {time.perf_counter() - t:.0f} s\n{proc.stderr[-2000:]}",
                      file=sys.stderr)
                continue
            row = json.loads(proc.stdout.strip().splitlines()[-1])
            row["load_avg_1m"] = os.getloadavg()[0]
            print(json.dumps(row), flush=True)
            with results.open("a", encoding="utf-8") as f:
                f.write(json.dumps(row) + "\n")


# --------------------------------------------------------------------------- plot


def plot(args: argparse.Namespace) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullFormatter

    rows = [json.loads(line) for line in Path(args.results).read_text().splitlines() if line.strip()]
    last: dict[tuple[str, str], dict] = {}
    for r in rows:
        last[(r["scale"], r["phase"])] = r  # the latest measurement of each configuration
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.2))
    series = [
        ("train", "s_per_epoch_extrapolated", "full-graph epoch (s, extrapolated)", "o-"),
        ("neighbor", "s_per_epoch_extrapolated", "neighbour-sampled epoch (s, extrapolated)", "s-"),
        ("neighbor-sparse", "s_per_epoch_extrapolated", "neighbour-sampled + SparseAdam epoch (s, extrap.)",
         "d--"),
        ("eval", "eval_s_extrapolated", "full-ranking evaluation (s, extrapolated)", "^-"),
    ]
    for phase, key, label, style in series:
        pts = sorted((r["train_edges"], r[key]) for (s, p), r in last.items() if p == phase and s != "gowalla"
                     and key in r)
        if pts:
            ax_t.plot(*zip(*pts), style, label=label)
        g = last.get(("gowalla", phase))
        if g and key in g:
            ax_t.plot([g["train_edges"]], [g[key]], style[0], mfc="none", ms=11, color="k")
        mpts = sorted((r["train_edges"], r["peak_rss_mb"]) for (s, p), r in last.items()
                      if p == phase and s != "gowalla")
        if mpts:
            ax_m.plot(*zip(*mpts), style, label=f"{phase} peak RSS")
        if g:
            ax_m.plot([g["train_edges"]], [g["peak_rss_mb"]], style[0], mfc="none", ms=11, color="k")
    for ax, title, ylabel in ((ax_t, "time vs graph size", "seconds"),
                              (ax_m, "peak RSS vs graph size", "MiB")):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())
        if ax is ax_m:  # memory spans one decade: label the minor ticks in MiB
            ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: f"{v:.0f}"))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0f}"))
        else:
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("training interactions (edges)")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("LightGCN 64-d, 3 layers, batch 2048, 1 thread; synthetic power-law 0.25x-10x Gowalla "
                 "(open black marker: real Gowalla)", fontsize=8)
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


# --------------------------------------------------------------------------- precision


def _top20(user_emb, item_emb, users, seen, compute_dtype):
    """Top-20 item indices ``(len(users), 20)``, scores computed in ``compute_dtype``."""

    from semrec.models.topk import topk

    s = (user_emb[users].to(compute_dtype) @ item_emb.to(compute_dtype).T).float()
    return topk(s, 20, seen=seen)[1].numpy()


class _Float32Scores:
    """A scorer whose scores are upcast to float32 after the product."""

    def __init__(self, inner) -> None:
        self.inner, self.n_items = inner, inner.n_items

    def score(self, users, history):
        return self.inner.score(users, history).float()


def precision(args: argparse.Namespace) -> None:
    """Size of ``embeddings.safetensors`` and top-20 agreement float32 vs float16/bfloat16.

    For each half type: the file is cast with :func:`semrec.serve.precision.cast_embeddings`;
    ``upcast`` scores with the half-precision values upcast to float32 (the proposed load
    hook), ``half_matmul`` scores in the half type itself (what ``load_run`` does today with a
    half file: ``EmbeddingScorer`` multiplies the tensors as stored). ``overlap@20`` is the mean
    share of a user's float32 top-20 (history excluded) that the other top-20 keeps; with a
    trained run, test Recall@20 (``evaluate_ranking`` on the same users) of each variant.
    """
    import torch
    from safetensors.torch import load_file, save_file

    from semrec.evaluate.ranking import evaluate_ranking
    from semrec.models.base import EmbeddingScorer
    from semrec.serve.precision import cast_embeddings

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    tmp = Path(tempfile.mkdtemp(prefix="semrec-precision-"))
    try:
        sources = {}
        if args.run:
            sources["trained"] = Path(args.run)
        rand_dir = tmp / "random"
        rand_dir.mkdir()
        g = torch.Generator().manual_seed(0)
        save_file({"user_emb": torch.randn(GOWALLA["n_users"], 64, generator=g) * 0.1,
                   "item_emb": torch.randn(GOWALLA["n_items"], 64, generator=g) * 0.1},
                  str(rand_dir / "embeddings.safetensors"))
        sources["random"] = rand_dir
        split = None
        if args.run:
            from semrec.artifacts.run import load_run

            split = load_run(args.run).split
        for name, src in sources.items():
            work = tmp / f"{name}-work"
            work.mkdir()
            shutil.copy(src / "embeddings.safetensors", work / "embeddings.safetensors")
            ref = load_file(str(work / "embeddings.safetensors"))
            n_users = ref["user_emb"].shape[0]
            users = np.sort(rng.choice(n_users, size=min(args.users, n_users), replace=False))
            seen = split.history("test")[users] if split is not None else None
            base = _top20(ref["user_emb"], ref["item_emb"], users, seen, torch.float32)
            size32 = (work / "embeddings.safetensors").stat().st_size
            test_users = None
            if split is not None and ref["item_emb"].shape[0] == split.n_items:
                test_users = users[split.matrix("test")[users].getnnz(axis=1) > 0]
            for dtype in args.dtypes.split(","):
                path = cast_embeddings(work, dtype, out=work / f"emb-{dtype}.safetensors")
                half = load_file(str(path))
                row = {"embeddings": name, "dtype": dtype, "bytes_fp32": size32, "bytes": path.stat().st_size,
                       "users": len(users)}
                variants = {"upcast": (half["user_emb"].float(), half["item_emb"].float()),
                            "half_matmul": (half["user_emb"], half["item_emb"])}
                for mode, (ue, ie) in variants.items():
                    top = _top20(ue, ie, users, seen, ue.dtype)
                    overlap = np.mean([len(np.intersect1d(a, b)) / 20 for a, b in zip(base, top)])
                    row[f"overlap@20_{mode}"] = round(float(overlap), 4)
                    if test_users is not None:
                        if "recall@20_fp32" not in row:
                            r32 = evaluate_ranking(EmbeddingScorer(ref["user_emb"], ref["item_emb"]), split,
                                                   "test", ks=(20,), users=test_users)
                            row["recall@20_fp32"] = round(r32["recall@20"], 4)
                            row["ndcg@20_fp32"] = round(r32["ndcg@20"], 4)
                        # scores upcast after the product, as semrec.inference.known does: the
                        # evaluator cannot take bfloat16 scores (numpy has no bfloat16)
                        r = evaluate_ranking(_Float32Scores(EmbeddingScorer(ue, ie)), split, "test", ks=(20,),
                                             users=test_users)
                        row[f"recall@20_{mode}"] = round(r["recall@20"], 4)
                        row[f"ndcg@20_{mode}"] = round(r["ndcg@20"], 4)
                print(json.dumps(row), flush=True)
                with Path(args.results).open("a", encoding="utf-8") as f:
                    f.write(json.dumps({"phase": "precision", "scale": "gowalla", **row}) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--scales", default="0.25,0.5,1,2,10,gowalla")
    r.add_argument("--phases", default="train,neighbor,eval")
    r.add_argument("--timeout", type=float, default=900)
    c = sub.add_parser("child")
    c.add_argument("--scale", required=True)
    c.add_argument("--phase", choices=("data", "train", "neighbor", "neighbor-sparse", "eval"), required=True)
    for q in (r, c):
        q.add_argument("--batches", type=int, default=3)
        q.add_argument("--eval-batches", type=int, default=2)
        q.add_argument("--budget-mb", type=float, default=512)
        q.add_argument("--fanouts", default="10,10,10")
    for q in (r,):
        q.add_argument("--results", default=str(HERE / "scale.jsonl"))
    pl = sub.add_parser("plot")
    pl.add_argument("--results", default=str(HERE / "scale.jsonl"))
    pl.add_argument("--out", default=str(HERE / "scale.png"))
    pr = sub.add_parser("precision")
    pr.add_argument("--run", default=None, help="a trained run folder (default: random embeddings only)")
    pr.add_argument("--users", type=int, default=3000)
    pr.add_argument("--dtypes", default="float16,bfloat16")
    pr.add_argument("--results", default=str(HERE / "scale_precision.jsonl"))
    args = p.parse_args()
    if args.cmd == "child":
        fan = [int(x) for x in args.fanouts.split(",")]
        print(json.dumps(child(args.scale, args.phase, args.batches, args.eval_batches, args.budget_mb, fan)))
    else:
        {"run": run, "plot": plot, "precision": precision}[args.cmd](args)


if __name__ == "__main__":
    main()
