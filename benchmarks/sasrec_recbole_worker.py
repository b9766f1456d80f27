"""RecBole's side of ``benchmarks/sasrec_recbole.py``: runs inside RecBole's own virtual
environment (never semrec's), so it imports RecBole and torch but not semrec.

Two phases, each reading and writing files in ``--work``:

* ``split``: build the dataset from the atomic files with the run's configuration and
  write ``recbole_split.json``: for every user, the training sequence, the validation
  item and the test item as RecBole's ``LS: valid_and_test`` cut them, plus the input
  sequence RecBole feeds SASRec for the test item. Nothing is trained.
* ``train``: the same dataset, SASRec trained by RecBole's ``Trainer`` with early stopping
  on validation; per-epoch seconds and the best epoch recorded; RecBole's own test metrics
  of the best checkpoint; then the best checkpoint scores every user listed in
  ``sequences.json`` over the sequence given there (``scores.npy``, columns in the
  order of ``items`` there). Results go to ``recbole_result.json``.
* ``score``: no training; the checkpoint ``--checkpoint`` (one a ``train`` phase saved,
  possibly while still running) is evaluated and scores users as in ``train``.

Not meant to be run by hand: the main script writes ``config.json`` and ``sequences.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from logging import getLogger
from pathlib import Path

import numpy as np
import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.data.interaction import Interaction
from recbole.model.sequential_recommender import SASRec
from recbole.trainer import Trainer
from recbole.utils import init_logger, init_seed

DATASET = "amazon-office"


class TimedTrainer(Trainer):
    """RecBole's ``Trainer`` unchanged, with the seconds of each training epoch and each
    validation recorded (the log prints them too, rounded)."""

    def __init__(self, config, model):
        super().__init__(config, model)
        self.train_seconds: list[float] = []
        self.valid_seconds: list[float] = []

    def _train_epoch(self, *args, **kwargs):
        t0 = time.perf_counter()
        out = super()._train_epoch(*args, **kwargs)
        self.train_seconds.append(time.perf_counter() - t0)
        return out

    def _valid_epoch(self, *args, **kwargs):
        t0 = time.perf_counter()
        out = super()._valid_epoch(*args, **kwargs)
        self.valid_seconds.append(time.perf_counter() - t0)
        return out


def load(work: Path, seed: int):
    """Config, dataset and the three dataloaders, as RecBole's ``run_recbole`` builds them
    (without importing ``recbole.quick_start``, whose module imports ray.tune)."""
    config_dict = json.loads((work / "config.json").read_text())
    config_dict.update(seed=seed, data_path=str(work / "data"), checkpoint_dir=str(work / "saved"))
    config = Config(model="SASRec", dataset=DATASET, config_dict=config_dict)
    init_seed(config["seed"], config["reproducibility"])
    init_logger(config)
    getLogger().info(config)
    dataset = create_dataset(config)
    getLogger().info(dataset)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    return config, dataset, train_data, valid_data, test_data


def dump_split(dataset, train_data, valid_data, test_data, path: Path) -> None:
    """Write each user's parts in RecBole's split, as external tokens, in order.

    After RecBole's sequence augmentation every row is (user, input sequence, target), so
    a user's training sequence is the first input item followed by the training targets;
    the validation and test parts are the targets of those dataloaders' rows."""
    uid, iid = dataset.uid_field, dataset.iid_field
    seq_field, len_field = dataset.item_id_list_field, dataset.item_list_length_field

    def rows(loader):
        feat = loader._dataset.inter_feat
        users = dataset.id2token(uid, feat[uid].numpy())
        targets = dataset.id2token(iid, feat[iid].numpy())
        seqs = feat[seq_field].numpy()
        lens = feat[len_field].numpy()
        inputs = [dataset.id2token(iid, s[:n]).tolist() for s, n in zip(seqs, lens)]
        return users.tolist(), targets.tolist(), inputs

    out: dict[str, dict] = {}
    users, targets, inputs = rows(train_data)
    for u, t, seq in zip(users, targets, inputs):
        entry = out.setdefault(u, {"train": [], "valid": [], "test": [], "test_input": []})
        if not entry["train"]:
            entry["train"] = [seq[0]]  # the first item is never a target
        entry["train"].append(t)
    for part, loader in (("valid", valid_data), ("test", test_data)):
        users, targets, inputs = rows(loader)
        for u, t, seq in zip(users, targets, inputs):
            entry = out.setdefault(u, {"train": [], "valid": [], "test": [], "test_input": []})
            entry[part].append(t)
            if part == "test":
                entry["test_input"] = seq
    path.write_text(json.dumps(out))


def train(config, dataset, train_data, valid_data, test_data, work: Path) -> dict:
    model = SASRec(config, train_data._dataset).to(config["device"])
    getLogger().info(model)
    trainer = TimedTrainer(config, model)
    marks: list[float] = []  # seconds since fit start at the end of each validated epoch
    best = {"epoch": -1}

    def after_epoch(epoch_idx: int, valid_score: float) -> None:
        marks.append(time.perf_counter() - t0)
        if trainer.cur_step == 0:  # early_stopping reset the counter: a new best
            best["epoch"] = epoch_idx

    t0 = time.perf_counter()
    best_valid_score, best_valid_result = trainer.fit(
        train_data, valid_data, saved=True, show_progress=False, callback_fn=after_epoch
    )
    fit_s = time.perf_counter() - t0

    epoch = best["epoch"]
    return {
        "epochs_run": len(trainer.train_seconds),
        "best_epoch": epoch,
        "train_seconds_per_epoch": trainer.train_seconds,
        "valid_seconds_per_epoch": trainer.valid_seconds,
        "time_to_best_s": marks[epoch] if epoch >= 0 else None,
        "fit_s": fit_s,
        "best_valid": {k: float(v) for k, v in best_valid_result.items()},
        "best_valid_score": float(best_valid_score),
        **test_and_score(trainer, trainer.saved_model_file, dataset, config, test_data, work),
    }


def test_and_score(trainer: Trainer, checkpoint_file: str, dataset, config, test_data, work: Path) -> dict:
    """Load ``checkpoint_file`` into the trainer's model, take RecBole's own test metrics
    and score the users of ``sequences.json``.

    The checkpoint is loaded here rather than by ``evaluate(load_best_model=True)``:
    RecBole's checkpoint holds its Config object, which torch >= 2.6 refuses to unpickle
    under its default ``weights_only=True``; the file is one this benchmark wrote."""
    model = trainer.model
    checkpoint = torch.load(checkpoint_file, map_location=config["device"], weights_only=False)
    model.load_state_dict(checkpoint["state_dict"])
    model.load_other_parameter(checkpoint.get("other_parameter"))
    t0 = time.perf_counter()
    test_result = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    test_s = time.perf_counter() - t0
    return {
        "recbole_test": {k: float(v) for k, v in test_result.items()},
        "recbole_test_s": test_s,
        "score_s": score_sequences(model, dataset, config, work),
        "n_parameters": sum(p.numel() for p in model.parameters()),
        "checkpoint": checkpoint_file,
        "checkpoint_epoch": int(checkpoint["epoch"]),
    }


@torch.no_grad()
def score_sequences(model: SASRec, dataset, config, work: Path) -> float:
    """Score every user of ``sequences.json`` over the sequence given for them (the last
    ``MAX_ITEM_LIST_LENGTH`` items, as RecBole truncates), all items, in the item order
    of ``sequences.json``; write ``scores.npy`` ``(n_users, n_items)`` float32."""
    t0 = time.perf_counter()
    spec = json.loads((work / "sequences.json").read_text())
    iid = dataset.iid_field
    max_len = config["MAX_ITEM_LIST_LENGTH"]
    # columns: the caller's items in RecBole's index space (0 is RecBole's padding item)
    known = set(dataset.field2token_id[iid])
    columns = np.array([dataset.token2id(iid, t) if t in known else -1 for t in spec["items"]])
    model.eval()
    out = np.full((len(spec["users"]), len(spec["items"])), -np.inf, dtype=np.float32)
    batch = int(config["eval_batch_size"])
    seqs = spec["sequences"]
    for start in range(0, len(seqs), batch):
        chunk = seqs[start : start + batch]
        item_seq = torch.zeros((len(chunk), max_len), dtype=torch.long)  # (B, L), left-aligned
        lengths = torch.zeros(len(chunk), dtype=torch.long)  # (B,)
        for r, seq in enumerate(chunk):
            ids = dataset.token2id(iid, seq[-max_len:]) if seq else np.zeros(0, dtype=np.int64)
            item_seq[r, : len(ids)] = torch.as_tensor(ids)
            lengths[r] = len(ids)
        if (lengths == 0).any():
            raise ValueError("a user to score has an empty sequence: SASRec needs at least one item")
        inter = Interaction({model.ITEM_SEQ: item_seq, model.ITEM_SEQ_LEN: lengths}).to(config["device"])
        scores = model.full_sort_predict(inter).cpu().numpy()  # (B, n_items_recbole)
        block = out[start : start + len(chunk)]
        block[:, columns >= 0] = scores[:, columns[columns >= 0]]
    np.save(work / "scores.npy", out)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--phase", choices=("split", "train", "score"), required=True)
    ap.add_argument("--checkpoint", type=Path, help="score: the RecBole checkpoint to evaluate")
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--seed", type=int, required=True)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.chdir(args.work)  # RecBole writes log/ and log_tensorboard/ under the working directory
    t0 = time.perf_counter()
    config, dataset, train_data, valid_data, test_data = load(args.work, args.seed)
    load_s = time.perf_counter() - t0
    if args.phase == "split":
        dump_split(dataset, train_data, valid_data, test_data, args.work / "recbole_split.json")
        return
    if args.phase == "train":
        result = train(config, dataset, train_data, valid_data, test_data, args.work)
    else:
        trainer = TimedTrainer(config, SASRec(config, train_data._dataset).to(config["device"]))
        result = test_and_score(trainer, str(args.checkpoint), dataset, config, test_data, args.work)
    result.update(
        load_s=load_s,
        recbole_version=sys.modules["recbole"].__version__,
        torch_version=torch.__version__,
        torch_threads=torch.get_num_threads(),
        n_items_recbole=int(dataset.item_num),  # includes RecBole's padding item 0
        n_users_recbole=int(dataset.user_num),  # includes RecBole's padding user 0
        n_train_rows=len(train_data._dataset),
    )
    (args.work / "recbole_result.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
