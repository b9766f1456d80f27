"""RecBole 1.2.1's SASRec (cross-entropy loss) on amazon-office, on semrec's
``leave-one-out`` split and scored by semrec's evaluator, beside semrec's own models.

    PYTHONPATH=. python benchmarks/sasrec_recbole.py [--threads 1] [--seed 2020] \\
        [--semrec itemknn,graphfilter] [--set MODEL:key=value] [--out results.jsonl]

RecBole is a benchmark-only dependency, never one of semrec's: the first run creates its
own virtual environment (``--venv``, default ``~/.cache/semrec/bench/venv-recbole``) with
``REQUIREMENTS`` below and reuses it afterwards (rebuilt when that list changes). RecBole
runs there, in ``sasrec_recbole_worker.py``; this script runs in semrec's environment.

Steps:

1. amazon-office is written as RecBole atomic files (``--work``/data): one row per
   interaction in file order, ``timestamp`` = the position in the user's sequence
   (amazon-office has no timestamps; its file order is time order, as semrec assumes).
2. RecBole builds its dataset with ``eval_args`` ``split: {LS: valid_and_test}``,
   ``order: TO``, ``group_by: user``, ``mode: full``; the script checks that the result is
   semrec's ``make_split(load_dataset('amazon-office'), 'leave-one-out')`` and stops with
   the differences if not: the training sequences must be identical, and the validation
   and test parts identical up to the interactions semrec drops because their item never
   occurs in training (RecBole keeps them; their number is reported).
3. SASRec is trained by RecBole's ``Trainer`` with RecBole's published SASRec defaults
   (``SASREC_CONFIG``), early-stopped on RecBole's validation NDCG@10 (full ranking).
   Recorded: seconds of every training epoch and validation, the best epoch, the wall time
   from the start of ``fit`` to the end of the best epoch's validation, and ``fit``'s total.
4. The best checkpoint scores every semrec test user over their ``train+valid`` sequence
   as semrec's split holds it, in order (the last 50 items); semrec's
   ``evaluate_ranking`` ranks all items with the history excluded (K = 10, 20).
   RecBole's own test metrics of the same checkpoint are reported beside them, with the
   two steps between the protocols measured (see ``protocol_steps``).

Every model prints one JSON line (``--out`` appends them to a file too). ``--semrec``
trains semrec models on the same split in the same run (one ``semrec train`` each), so
that their timings are taken on the same machine under the same load; per model:
``epochs_run``, ``best_epoch`` (1-based: epochs trained when the best validation was
reached, for RecBole too), ``seconds_per_epoch`` (median training seconds),
``time_to_best_s`` (training plus validation seconds up to and including the best epoch)
and ``fit_s``.

``--sasrec native`` (or ``both``) trains instead (or as well) the faithful SASRec written
in this script (:class:`NativeSASRec`: Kang & McAuley's architecture at RecBole's sizes, CE
over all items at every position of each training sequence), in semrec's environment:
the fallback for a machine where RecBole cannot run or finish in reasonable time. RecBole
trains one sample per prefix, each padded to 50 positions, with 19 steps of 2048 per
epoch here; at one thread on a loaded 2-core machine an epoch takes 90-240 s.

``--threads`` (default 1) is the torch thread count of every model in the run: one thread
gives stable timings on the shared 2-core machine and is what semrec's other timing
benchmarks use; give both sides the same count when comparing speed.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from semrec.data.load import load_dataset
from semrec.data.split import Split, make_split
from semrec.evaluate.ranking import evaluate_ranking

DATASET = "amazon-office"
SPLIT = "leave-one-out"
KS = (10, 20)
WORKER = Path(__file__).with_name("sasrec_recbole_worker.py")

#: RecBole's environment. RecBole 1.2.1 itself asks for ``ray<=2.6.3`` and otherwise
#: unpinned libraries; the pins keep it on releases it works with, without patching it:
#: ``numpy<2`` (RecBole aliases ``np.float`` and friends, gone in numpy 2);
#: ``pandas==2.2.3`` (under pandas 3's copy-on-write RecBole's
#: ``feat[field].fillna(..., inplace=True)`` silently fills nothing); torch is this exact
#: CPU build, which pip finds on local disk (an unpinned torch would pull a multi-GB CUDA
#: build). ``freeze.txt`` in the venv lists every version installed.
REQUIREMENTS = (
    "recbole==1.2.1",
    "torch==2.13.0",
    "numpy<2",
    "pandas==2.2.3",
)

#: RecBole's configuration for the run: SASRec's published defaults
#: (``recbole/properties/model/SASRec.yaml``: 2 layers, 2 heads, hidden 64, inner 256,
#: dropout 0.5 / 0.5, GELU, CE) and RecBole's overall defaults (Adam, lr 1e-3, batch 2048,
#: up to 300 epochs, ``stopping_step`` 10: training stops after 11 validations in a row
#: below the best, a tie at RecBole's 4 rounded decimals counting as a new best), with only
#: what this protocol needs changed: CE trains against all items, so no negative sampling;
#: leave-one-out by time order; validation NDCG@10 (RecBole's default is MRR@10) over full
#: ranking; K = 10, 20; the CPU.
SASREC_CONFIG = {
    "USER_ID_FIELD": "user_id",
    "ITEM_ID_FIELD": "item_id",
    "TIME_FIELD": "timestamp",
    "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
    "MAX_ITEM_LIST_LENGTH": 50,
    "loss_type": "CE",
    "train_neg_sample_args": None,
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
    "metrics": ["Recall", "NDCG"],
    "topk": list(KS),
    "valid_metric": "NDCG@10",
    "epochs": 300,
    "stopping_step": 10,
    "train_batch_size": 2048,
    "eval_batch_size": 4096,
    "learning_rate": 0.001,
    "use_gpu": False,
    "reproducibility": True,
    "show_progress": False,
    "state": "INFO",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1, help="torch threads of every model (default 1)")
    ap.add_argument("--seed", type=int, default=2020, help="RecBole's seed (default 2020, RecBole's own)")
    ap.add_argument("--semrec", default="", help="comma-separated semrec models to run beside SASRec")
    ap.add_argument("--set", dest="sets", action="append", default=[],
                    help="MODEL:key=value or key=value for the semrec models (as in `semrec train --set`)")
    ap.add_argument("--sasrec", choices=("recbole", "native", "both", "none"), default="recbole",
                    help="RecBole's SASRec (default), the faithful one in this script, both, or none")
    ap.add_argument("--venv", type=Path, default=Path.home() / ".cache/semrec/bench/venv-recbole")
    ap.add_argument("--work", type=Path, default=Path("runs/bench/sasrec-recbole"),
                    help="atomic files, RecBole's logs and checkpoint, scores (default runs/bench/sasrec-recbole)")
    ap.add_argument("--out", type=Path, default=None, help="append the JSON lines to this file")
    ap.add_argument("--recbole-checkpoint", type=Path, default=None,
                    help="evaluate this RecBole checkpoint (saved by an earlier run, e.g. one stopped "
                         "before it finished) instead of training; the line then has no timings")
    args = ap.parse_args()
    if args.threads < 1:
        ap.error("--threads must be at least 1")
    torch.set_num_threads(args.threads)

    dataset = load_dataset(DATASET)
    split = make_split(dataset, SPLIT)
    context = {"data": DATASET, "split": SPLIT, "threads": args.threads}
    if args.sasrec in ("recbole", "both"):
        emit(run_recbole(dataset, split, args, context | {"load_avg_start": os.getloadavg()[0]}), args.out)
    if args.sasrec in ("native", "both"):
        emit(run_native(split, args, context | {"load_avg_start": os.getloadavg()[0]}), args.out)
    for name in [m for m in args.semrec.split(",") if m]:
        emit(run_semrec(name, dataset, args, context | {"load_avg_start": os.getloadavg()[0]}), args.out)


def emit(line: dict, out: Path | None) -> None:
    text = json.dumps(line)
    print(text, flush=True)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a", encoding="utf-8") as f:
            f.write(text + "\n")


# --------------------------------------------------------------------------- RecBole's venv


def ensure_venv(venv: Path) -> Path:
    """The venv's Python, creating the venv (or rebuilding it when ``REQUIREMENTS``
    changed). ``requirements.txt`` inside it records what it was built with."""
    python = venv / "bin" / "python"
    stamp = venv / "requirements.txt"
    wanted = "\n".join(REQUIREMENTS) + "\n"
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    print(f"creating RecBole's virtual environment in {venv} (once) ...", file=sys.stderr, flush=True)
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", *REQUIREMENTS]
    proc = subprocess.run(pip)
    if proc.returncode != 0:
        raise SystemExit(f"installing {' '.join(REQUIREMENTS)} into {venv} failed (pip exit {proc.returncode})")
    freeze = subprocess.run([str(python), "-m", "pip", "freeze"], capture_output=True, text=True, check=True)
    (venv / "freeze.txt").write_text(freeze.stdout)
    stamp.write_text(wanted)
    return python


def run_worker(python: Path, work: Path, phase: str, threads: int, seed: int, *extra: str) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "PYTHONPATH": ""}  # RecBole's venv must not see semrec's checkout
    cmd = [str(python), str(WORKER), "--work", str(work), "--phase", phase,
           "--threads", str(threads), "--seed", str(seed), *extra]
    proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    (work / f"worker-{phase}.log").write_text(proc.stdout)
    if proc.returncode != 0:
        tail = "\n".join(proc.stdout.splitlines()[-30:])
        raise SystemExit(f"RecBole's worker ({phase}) failed with exit {proc.returncode}; "
                         f"last lines of {work / f'worker-{phase}.log'}:\n{tail}")


# --------------------------------------------------------------------------- data and split


def write_atomic_files(dataset, folder: Path) -> None:
    """``folder/amazon-office.inter``: user, item, timestamp = position in the user's
    sequence, in file order (the order semrec's leave-one-out takes as time order)."""
    inter = dataset.interactions
    if dataset.has_timestamps:
        raise SystemExit(f"{DATASET} now has timestamps: write them instead of positions")
    position = inter.groupby("user_id", sort=False).cumcount().to_numpy()
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{DATASET}.inter").open("w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for u, i, t in zip(inter["user_id"], inter["item_id"], position):
            f.write(f"{u}\t{i}\t{t}\n")


def sequences(split: Split, parts: tuple[str, ...]) -> dict[str, list[str]]:
    """Each user's items in ``parts`` (in that order, each part in file order), as
    external ids."""
    users = np.concatenate([getattr(split, p).users for p in parts])
    items = np.concatenate([getattr(split, p).items for p in parts])
    order = np.argsort(users, kind="stable")  # keeps part order, then file order
    user_ids, item_ids = split.users.ids, split.items.ids
    out: dict[str, list[str]] = {}
    for u, i in zip(users[order], items[order]):
        out.setdefault(user_ids[u], []).append(item_ids[i])
    return out


def check_split(split: Split, recbole: dict[str, dict], raw: dict[str, list[str]]) -> dict:
    """Compare RecBole's leave-one-out with semrec's; raise ``SystemExit`` listing the
    first differences if they are not the same split. Returns what differs by design."""
    problems: list[str] = []
    train = sequences(split, ("train",))
    train_items = {i for seq in train.values() for i in seq}
    if set(recbole) != set(raw):
        problems.append(f"RecBole has {len(recbole)} users, the data {len(raw)}")
    if set(train) != set(recbole):
        problems.append(f"users with training items: semrec {len(train)}, RecBole {len(recbole)}")
    kept = {"valid": 0, "test": 0}
    for part in ("valid", "test"):
        ours = {(u, i) for u, seq in sequences(split, (part,)).items() for i in seq}
        theirs = {(u, i) for u, e in recbole.items() for i in e[part]}
        unseen = {(u, i) for u, i in theirs if i not in train_items}
        differ = ours ^ (theirs - unseen)
        if differ:
            problems.append(f"{part}: {len(differ)} (user, item) pairs differ, e.g. {sorted(differ)[:5]}")
        kept[part] = len(unseen)
    for u, entry in recbole.items():
        if train.get(u, []) != entry["train"]:
            problems.append(f"user {u}: training sequence semrec {train.get(u)} != RecBole {entry['train']}")
        if entry["test_input"] != raw[u][:-1][-SASREC_CONFIG["MAX_ITEM_LIST_LENGTH"]:]:
            problems.append(f"user {u}: RecBole's test input is not the user's sequence before the test item")
        if len(problems) > 10:
            break
    if problems:
        raise SystemExit("RecBole's split is not semrec's leave-one-out:\n  " + "\n  ".join(problems[:10]))
    return {"recbole_keeps_unseen_valid": kept["valid"], "recbole_keeps_unseen_test": kept["test"]}


# --------------------------------------------------------------------------- scoring


class PrecomputedScorer:
    """semrec's ``Scorer`` over scores a model computed elsewhere: row ``r`` of
    ``scores`` ``(n_rows, n_items)`` belongs to user ``users[r]`` (internal index) and was
    computed from ``known[r]``, the set of items the model was given. ``score`` checks
    that this is the history the evaluator passes, so no model sees less or more."""

    def __init__(self, scores: np.ndarray, users: np.ndarray, known: list[set[int]]) -> None:
        self.scores = scores
        self.known = known
        self.row = {int(u): r for r, u in enumerate(users)}

    @property
    def n_items(self) -> int:
        return int(self.scores.shape[1])

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        rows = []
        for b, u in enumerate(users):
            r = self.row.get(int(u))
            if r is None:
                raise ValueError(f"user {u} was not scored by the model")
            given = set(history.indices[history.indptr[b] : history.indptr[b + 1]].tolist())
            if given != self.known[r]:
                raise ValueError(f"user {u}: the model saw {len(self.known[r])} items, "
                                 f"the evaluator's history has {len(given)}")
            rows.append(r)
        return torch.from_numpy(self.scores[rows].copy())  # (B, n_items), a copy: masked in place


def unmasked_metrics(scores: np.ndarray, targets: np.ndarray) -> dict[str, float]:
    """Recall@K and NDCG@K with one relevant item per row and nothing excluded (RecBole's
    sequential protocol): rank = items scored above the target; hit when rank < K;
    ``NDCG = 1 / log2(rank + 2)``; averaged over rows."""
    target_scores = scores[np.arange(len(targets)), targets][:, None]  # (N, 1)
    rank = (scores > target_scores).sum(axis=1)  # (N,)
    out = {}
    for k in KS:
        hit = rank < k
        out[f"recall@{k}"] = float(hit.mean())
        out[f"ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(rank + 2), 0.0).mean())
    return out

# --------------------------------------------------------------------------- the faithful SASRec


@dataclass(frozen=True)
class NativeConfig:
    """The in-script SASRec: Kang & McAuley's architecture with RecBole's sizes, so the
    two sides have the same capacity.

    Attributes:
        hidden: embedding and model width. 64 (RecBole; the paper uses 50).
        heads: attention heads. 2 (RecBole; the paper 1).
        blocks: self-attention blocks. 2 (both).
        inner: width of the point-wise feed-forward layer. 256 (RecBole; the paper ``hidden``).
        dropout: on embeddings, attention weights and feed-forward outputs. 0.5 (both, on
            the sparse Amazon data).
        max_len: positions read. 50 (both, for Amazon).
        lr: Adam learning rate, betas (0.9, 0.98) as in the paper. 1e-3 (both).
        batch_size: user sequences per step. 128 (the paper).
        epochs: upper bound. 300 (RecBole).
        patience: training stops after ``patience + 1`` validations in a row without an
            NDCG@10 at least as good as the best. 10 (RecBole's ``stopping_step``, same rule).
    """

    hidden: int = 64
    heads: int = 2
    blocks: int = 2
    inner: int = 256
    dropout: float = 0.5
    max_len: int = 50
    lr: float = 1e-3
    batch_size: int = 128
    epochs: int = 300
    patience: int = 10


class NativeSASRec(nn.Module):
    """SASRec (Kang & McAuley, ICDM 2018): learned item and position embeddings,
    ``blocks`` causal self-attention blocks, layer norm, dropout; the output at position
    ``t`` scores the item at ``t + 1`` by its inner product with the (shared) item
    embeddings. Weights of rank 2 start Xavier-normal. Block, as in the authors' code: ``q = LN(x); x = q + MHA(q, x, x)``;
    ``x = LN(x); x = x + FFN(x)``; padded positions zeroed; a final LN.

    Sequences are right-aligned with 0 as padding; item ``i`` of the split is token ``i + 1``.
    """

    def __init__(self, n_items: int, cfg: NativeConfig) -> None:
        super().__init__()
        d = cfg.hidden
        self.n_items = n_items
        self.scale = d**0.5
        self.item = nn.Embedding(n_items + 1, d, padding_idx=0)
        self.pos = nn.Embedding(cfg.max_len, d)
        self.drop = nn.Dropout(cfg.dropout)
        self.attn_norm = nn.ModuleList(nn.LayerNorm(d, eps=1e-8) for _ in range(cfg.blocks))
        self.attn = nn.ModuleList(
            nn.MultiheadAttention(d, cfg.heads, dropout=cfg.dropout, batch_first=True) for _ in range(cfg.blocks)
        )
        self.ffn_norm = nn.ModuleList(nn.LayerNorm(d, eps=1e-8) for _ in range(cfg.blocks))
        self.ffn = nn.ModuleList(
            nn.Sequential(nn.Linear(d, cfg.inner), nn.Dropout(cfg.dropout), nn.ReLU(),
                          nn.Linear(cfg.inner, d), nn.Dropout(cfg.dropout))
            for _ in range(cfg.blocks)
        )
        self.last_norm = nn.LayerNorm(d, eps=1e-8)
        for p in self.parameters():  # the authors' PyTorch port: Xavier normal
            if p.dim() > 1:
                nn.init.xavier_normal_(p)
        with torch.no_grad():
            self.item.weight[0].zero_()

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """``seq`` (B, L) tokens -> hidden states (B, L, d)."""
        length = seq.shape[1]
        keep = (seq > 0).unsqueeze(-1)  # (B, L, 1)
        x = self.item(seq) * self.scale + self.pos(torch.arange(length, device=seq.device))  # (B, L, d)
        x = self.drop(x) * keep
        causal = torch.ones(length, length, dtype=torch.bool, device=seq.device).triu(1)  # True = hidden
        for attn_norm, attn, ffn_norm, ffn in zip(self.attn_norm, self.attn, self.ffn_norm, self.ffn):
            q = attn_norm(x)
            x = q + attn(q, x, x, attn_mask=causal, need_weights=False)[0]
            x = ffn_norm(x)
            x = (x + ffn(x)) * keep
        return self.last_norm(x)

    def item_weights(self) -> torch.Tensor:
        return self.item.weight[1:]  # (n_items, d), padding left out

    def loss(self, seq: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy over all items at every non-padded position: ``target`` (B, L)
        holds the next token at each position, 0 where there is none."""
        h = self(seq)  # (B, L, d)
        mask = target > 0
        logits = h[mask] @ self.item_weights().T  # (P, n_items)
        return nn.functional.cross_entropy(logits, target[mask] - 1)

    @torch.no_grad()
    def score_last(self, seq: torch.Tensor) -> torch.Tensor:
        """Scores (B, n_items) of the item after each sequence's last position."""
        return self(seq)[:, -1] @ self.item_weights().T


def right_aligned(seqs: list[np.ndarray], max_len: int) -> torch.Tensor:
    """(B, L) tokens, each sequence's last ``max_len`` items at the right, 0-padded;
    ``L`` = the longest (clipped) sequence in the batch."""
    width = max(1, max(min(len(s), max_len) for s in seqs))
    out = np.zeros((len(seqs), width), dtype=np.int64)
    for r, s in enumerate(seqs):
        s = s[-max_len:]
        if len(s):
            out[r, width - len(s):] = s
    return torch.from_numpy(out)


def index_sequences(split: Split, parts: tuple[str, ...]) -> dict[int, np.ndarray]:
    """Each user's internal item indices in ``parts`` (part order, then file order)."""
    users = np.concatenate([getattr(split, p).users for p in parts])
    items = np.concatenate([getattr(split, p).items for p in parts])
    order = np.argsort(users, kind="stable")
    users, items = users[order], items[order]
    cuts = np.flatnonzero(np.diff(users)) + 1
    return {int(u[0]): i for u, i in zip(np.split(users, cuts), np.split(items, cuts)) if len(u)}


class SequenceScorer:
    """semrec's ``Scorer`` for :class:`NativeSASRec`: a user is scored from their items
    in ``parts``, in order; ``score`` checks that this is the evaluator's history."""

    def __init__(self, model: NativeSASRec, split: Split, parts: tuple[str, ...], max_len: int) -> None:
        self.model = model
        self.seqs = index_sequences(split, parts)
        self.max_len = max_len

    @property
    def n_items(self) -> int:
        return self.model.n_items

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> torch.Tensor:
        seqs = []
        for b, u in enumerate(users):
            seq = self.seqs.get(int(u), np.zeros(0, dtype=np.int64))
            given = history.indices[history.indptr[b] : history.indptr[b + 1]]
            if set(given.tolist()) != set(seq.tolist()):
                raise ValueError(f"user {u}: the model reads {len(seq)} items, the evaluator's history has {len(given)}")
            seqs.append(seq + 1)
        self.model.eval()
        return self.model.score_last(right_aligned(seqs, self.max_len))


def train_native(model: NativeSASRec, split: Split, cfg: NativeConfig, rng: np.random.Generator) -> dict:
    """Adam on every position of every training sequence; validation NDCG@10 (semrec's
    evaluator, full ranking, training items excluded) after every epoch; the best state
    is restored."""
    train = [s + 1 for s in index_sequences(split, ("train",)).values() if len(s) >= 2]
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.98))
    valid_scorer = SequenceScorer(model, split, ("train",), cfg.max_len)
    train_s, valid_s, marks = [], [], []
    best_value, best_epoch, best_state, since = -1.0, 0, None, 0
    t0 = time.perf_counter()
    for epoch in range(1, cfg.epochs + 1):
        t1 = time.perf_counter()
        model.train()
        order = rng.permutation(len(train))
        for start in range(0, len(order), cfg.batch_size):
            chunk = [train[j] for j in order[start : start + cfg.batch_size]]
            full = right_aligned(chunk, cfg.max_len + 1)  # (B, L + 1)
            loss = model.loss(full[:, :-1], full[:, 1:])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        t2 = time.perf_counter()
        value = evaluate_ranking(valid_scorer, split, part="valid", ks=(10,))["ndcg@10"]
        t3 = time.perf_counter()
        train_s.append(t2 - t1)
        valid_s.append(t3 - t2)
        marks.append(t3 - t0)
        print(f"sasrec-native epoch {epoch}: loss {loss.item():.4f}, valid ndcg@10 {value:.4f}, "
              f"{t2 - t1:.1f}+{t3 - t2:.1f} s", file=sys.stderr, flush=True)
        if value >= best_value:  # RecBole's rule: a tie is a new best
            best_value, best_epoch, since = value, epoch, 0
            best_state = copy.deepcopy(model.state_dict())
        else:
            since += 1
            if since > cfg.patience:  # RecBole's rule: stop after patience + 1 worse validations
                break
    model.load_state_dict(best_state)
    return {"train_seconds_per_epoch": train_s, "valid_seconds_per_epoch": valid_s, "best_epoch": best_epoch,
            "best_valid": best_value, "time_to_best_s": marks[best_epoch - 1], "fit_s": time.perf_counter() - t0}


# --------------------------------------------------------------------------- the runs


def run_recbole(dataset, split: Split, args, context: dict) -> dict:
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    python = ensure_venv(args.venv.expanduser())
    write_atomic_files(dataset, work / "data" / DATASET)
    (work / "config.json").write_text(json.dumps(SASREC_CONFIG, indent=1))

    raw: dict[str, list[str]] = {}
    for u, i in zip(dataset.interactions["user_id"], dataset.interactions["item_id"]):
        raw.setdefault(str(u), []).append(str(i))
    run_worker(python, work, "split", args.threads, args.seed)
    split_check = check_split(split, json.loads((work / "recbole_split.json").read_text()), raw)
    print(f"split check passed: {split_check}", file=sys.stderr, flush=True)

    # semrec's test users and what semrec knows of them at test time, in order
    test_users = np.unique(split.test.users)  # (N,) internal, increasing
    known = sequences(split, ("train", "valid"))
    user_ids, item_ids = split.users.ids, split.items.ids
    seqs = [known.get(user_ids[u], []) for u in test_users]
    (work / "sequences.json").write_text(json.dumps(
        {"items": item_ids, "users": [user_ids[u] for u in test_users], "sequences": seqs}))

    t0 = time.perf_counter()
    if args.recbole_checkpoint is None:
        run_worker(python, work, "train", args.threads, args.seed)
    else:
        run_worker(python, work, "score", args.threads, args.seed,
                   "--checkpoint", str(args.recbole_checkpoint.resolve()))
    worker_s = time.perf_counter() - t0
    result = json.loads((work / "recbole_result.json").read_text())
    if args.recbole_checkpoint is None and result["checkpoint_epoch"] != result["best_epoch"]:
        raise SystemExit(f"RecBole's checkpoint is from epoch {result['checkpoint_epoch']}, "
                         f"its best validation from epoch {result['best_epoch']}")
    scores = np.load(work / "scores.npy")  # (N, n_items) in semrec's item order

    item_index = split.items.indices
    scorer = PrecomputedScorer(scores, test_users, [set(item_index(s).tolist()) for s in seqs])
    semrec_metrics = evaluate_ranking(scorer, split, part="test", ks=KS)

    # between the protocols: semrec's users and histories with nothing excluded
    test_csr = split.matrix("test")
    targets = np.array([test_csr.indices[test_csr.indptr[u]] for u in test_users])
    steps = {"semrec_users_no_exclusion": unmasked_metrics(scores, targets),
             "n_semrec_test_users": len(test_users)}

    train_s = result.get("train_seconds_per_epoch")
    valid_s = result.get("valid_seconds_per_epoch")
    return {
        "model": "recbole-sasrec",
        **context,
        "metrics": {f"{m}@{k}": semrec_metrics[f"{m}@{k}"] for k in KS for m in ("recall", "ndcg")},
        "semrec_evaluator": semrec_metrics,
        "recbole_test": result["recbole_test"],
        "protocol_steps": steps,
        "split_check": split_check,
        "epochs_run": result.get("epochs_run"),
        "best_epoch": result["checkpoint_epoch"] + 1,
        "seconds_per_epoch": statistics.median(train_s) if train_s else None,
        "valid_seconds_per_epoch": statistics.median(valid_s) if valid_s else None,
        "train_seconds_per_epoch": [round(s, 3) for s in train_s] if train_s else None,
        "time_to_best_s": result.get("time_to_best_s"),
        "fit_s": result.get("fit_s"),
        "best_valid": result.get("best_valid"),
        "checkpoint": None if args.recbole_checkpoint is None else str(args.recbole_checkpoint),
        "worker_s": worker_s,
        "load_avg_end": os.getloadavg()[0],
        "recbole": {k: result[k] for k in ("recbole_version", "torch_version", "torch_threads",
                                           "n_items_recbole", "n_users_recbole", "n_train_rows",
                                           "n_parameters", "load_s", "score_s")},
        "config": SASREC_CONFIG | {"seed": args.seed},
    }


def run_native(split: Split, args, context: dict) -> dict:
    cfg = NativeConfig()
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = NativeSASRec(split.n_items, cfg)
    result = train_native(model, split, cfg, rng)
    test = evaluate_ranking(SequenceScorer(model, split, ("train", "valid"), cfg.max_len), split, part="test", ks=KS)
    train_s = result["train_seconds_per_epoch"]
    return {
        "model": "sasrec-native",
        **context,
        "metrics": {f"{m}@{k}": test[f"{m}@{k}"] for k in KS for m in ("recall", "ndcg")},
        "semrec_evaluator": test,
        "epochs_run": len(train_s),
        "best_epoch": result["best_epoch"],
        "seconds_per_epoch": statistics.median(train_s),
        "valid_seconds_per_epoch": statistics.median(result["valid_seconds_per_epoch"]),
        "train_seconds_per_epoch": [round(t, 3) for t in train_s],
        "time_to_best_s": result["time_to_best_s"],
        "fit_s": result["fit_s"],
        "best_valid": {"ndcg@10": result["best_valid"]},
        "load_avg_end": os.getloadavg()[0],
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "config": dataclasses.asdict(cfg) | {"seed": args.seed},
    }


def run_semrec(name: str, dataset, args, context: dict) -> dict:
    from semrec.pipeline import build_config, train_and_save

    sets = [s.split(":", 1)[1] for s in args.sets if s.startswith(f"{name}:")]
    sets += [s for s in args.sets if ":" not in s.split("=", 1)[0]]
    config = build_config(name, split=SPLIT, sets=sets + ["progress=false"])
    out = args.work.resolve() / f"semrec-{name}"
    run = train_and_save(DATASET, config, out, dataset=dataset)
    history = run.result.history if run.result is not None else []
    best = run.metrics.get("best_epoch")
    upto = [r for r in history if best is not None and r["epoch"] <= best]
    train_s = [r["train_s"] for r in history]
    return {
        "model": name,
        **context,
        "sets": sets,
        "metrics": {f"{m}@{k}": run.metrics["test"][f"{m}@{k}"] for k in KS for m in ("recall", "ndcg")},
        "semrec_evaluator": run.metrics["test"],
        "epochs_run": run.metrics.get("epochs_run"),
        "best_epoch": best,
        "seconds_per_epoch": statistics.median(train_s) if train_s else None,
        "time_to_best_s": sum(r["train_s"] + r.get("eval_s", 0.0) for r in upto) if upto else None,
        "fit_s": run.metrics["fit_s"],
        "load_avg_end": os.getloadavg()[0],
        "command": f"semrec train --data {DATASET} --model {name} --split {SPLIT} "
                   + " ".join(f"--set {s}" for s in sets),
    }


if __name__ == "__main__":
    main()
