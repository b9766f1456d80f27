import pytest

from semrec.train.tracking import TensorBoardTracker


def test_disabled_tracker_writes_nothing(tmp_path):
    t = TensorBoardTracker(tmp_path / "tb", enabled=False)
    t.log_epoch(1, {"loss": 1.0})
    t.log_hparams({"lr": 0.1}, {"ndcg@20": 0.2})
    t.close()
    assert not t.enabled and not (tmp_path / "tb").exists()


def test_scalars_and_hparams_are_readable(tmp_path):
    pytest.importorskip("tensorboard", reason="tensorboard is not installed (pip install 'semrec[track]')")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    with TensorBoardTracker(tmp_path / "tb") as t:
        for epoch, (loss, ndcg) in enumerate([(0.7, 0.1), (0.5, 0.2)], 1):
            t.log_epoch(epoch, {"epoch": epoch, "loss": loss, "bpr": loss, "ndcg@20": ndcg, "train_s": 0.1,
                                "note": "text is skipped", "bad": float("nan")})
        t.log_hparams({"model": {"name": "mf", "dim": 8}, "train": {"lr": 0.01, "max_seconds": None}},
                      {"test": {"ndcg@20": 0.25}, "fit_s": 1.5, "best_epoch": None})
    ea = EventAccumulator(str(tmp_path / "tb"))
    ea.Reload()
    tags = set(ea.Tags()["scalars"])
    assert {"train/loss", "train/bpr", "valid/ndcg@20", "time/train_s"} <= tags
    assert [(s.step, round(s.value, 4)) for s in ea.Scalars("valid/ndcg@20")] == [(1, 0.1), (2, 0.2)]
    assert not any("note" in tag or "bad" in tag for tag in tags)
    assert {"final/test/ndcg@20", "final/fit_s"} <= tags  # the hparams' metrics
