"""The CLI contract: commands, JSON shapes, and errors without tracebacks."""
import json
import subprocess
import sys

import pytest

from semrec.cli.main import main


@pytest.fixture(scope="module")
def runs(tmp_path_factory, data_home):
    """popularity and a short MF run on ml-100k u1, trained once for this module."""
    base = tmp_path_factory.mktemp("runs")
    for model, extra in (("popularity", []), ("mf", ["--set", "epochs=5", "--set", "dim=16"])):
        with pytest.raises(SystemExit) as exc:
            main(["train", "--data", "ml-100k", "--model", model, "--split", "given:u1",
                  "--out", str(base / model), "--quiet", *extra])
        assert exc.value.code == 0
    return base


def test_data_info_json(run_cli, data_home):
    code, out, _ = run_cli("data", "info", "ml-100k", "--json")
    assert code == 0
    info = json.loads(out)
    assert (info["n_users"], info["n_items"], info["n_interactions"]) == (943, 1682, 100000)


def test_evaluate_json_shape(run_cli, runs):
    code, out, _ = run_cli("evaluate", str(runs / "mf"), "--k", "10,20", "--json")
    assert code == 0
    res = json.loads(out)
    assert res["dataset"] == "ml-100k" and res["model"] == "mf" and res["split"] == "given:u1"
    assert res["n_test_users"] == 459
    for key in ("recall@20", "ndcg@20", "precision@20", "hit@20", "mrr@20", "recall@10"):
        assert 0.0 <= res["metrics"][key] <= 1.0


def test_evaluate_json_carries_beyond_accuracy_and_rerank(run_cli, runs):
    code, out, _ = run_cli("evaluate", str(runs / "mf"), "--json")
    assert code == 0
    plain = json.loads(out)
    m = plain["metrics"]
    for k in (10, 20):  # the old keys, and the new ones
        for name in ("recall", "ndcg", "precision", "hit", "mrr", "coverage", "diversity", "novelty",
                     "popularity", "tail", "gini", "entropy", "recall_users_low", "ndcg_users_high",
                     "recall_head", "ndcg_tail"):
            assert isinstance(m[f"{name}@{k}"], float), f"{name}@{k}"
    assert plain["beyond"]["diversity_space"] == "learned"  # MF: no text, learned item vectors
    assert set(plain["beyond"]["user_groups"]) == {"low", "mid", "high"}
    assert sum(g["n_users"] for g in plain["beyond"]["user_groups"].values()) == 459
    assert "rerank" not in plain

    code, out, _ = run_cli("evaluate", str(runs / "mf"), "--diversity", "0.5", "--json")
    diverse = json.loads(out)
    assert diverse["rerank"] == {"diversity": 0.5, "novelty": 0.0, "pool": 100}
    assert diverse["metrics"]["diversity@10"] > m["diversity@10"]
    code, out, _ = run_cli("evaluate", str(runs / "mf"), "--novelty", "1", "--pool", "50", "--json")
    debiased = json.loads(out)
    assert debiased["rerank"]["pool"] == 50
    assert debiased["metrics"]["popularity@10"] < m["popularity@10"]
    assert debiased["metrics"]["tail@10"] > m["tail@10"]

    code, out, _ = run_cli("evaluate", str(runs / "popularity"), "--k", "5")
    assert code == 0 and "cooccurrence space" in out and "novelty@5" in out


def test_recommend_reranks_the_pool_and_keeps_the_scores(run_cli, runs):
    def items(*extra):
        code, out, err = run_cli("recommend", str(runs / "mf"), "--user", "1", "-k", "10", "--json", *extra)
        assert code == 0, err
        return json.loads(out)["items"]

    plain, pool = items(), items("-k", "30")
    diverse = items("--diversity", "0.6", "--pool", "30")
    assert len(diverse) == 10 and diverse != plain
    scores = {it["item"]: it["score"] for it in pool}
    assert all(it["item"] in scores and it["score"] == scores[it["item"]] for it in diverse)
    assert diverse[0] == plain[0]  # MMR always starts with the best item
    assert items("--diversity", "0", "--novelty", "0") == plain
    code, _, err = run_cli("recommend", str(runs / "mf"), "--user", "1", "--diversity", "2")
    assert code == 2 and "--diversity" in err


def test_recommend_json_shape_excludes_seen(run_cli, runs):
    code, out, _ = run_cli("recommend", str(runs / "popularity"), "--user", "1", "-k", "5", "--json")
    assert code == 0
    res = json.loads(out)
    assert res["user"] == "1"
    assert len(res["items"]) == 5
    assert set(res["items"][0]) == {"item", "score", "title"}
    # popularity's top items are ones user 1 has seen (e.g. Star Wars, id 50): they must not appear
    assert "50" not in [it["item"] for it in res["items"]]
    assert all(isinstance(it["title"], str) for it in res["items"])


def test_recommend_unknown_user_is_a_clear_error(run_cli, runs):
    code, _, err = run_cli("recommend", str(runs / "mf"), "--user", "nobody")
    assert code == 2
    assert "error: unknown user 'nobody'" in err


def test_train_bad_set_key(run_cli, tmp_path, data_home):
    code, _, err = run_cli("train", "--data", "ml-100k", "--model", "mf", "--set", "epochz=3",
                           "--out", str(tmp_path / "r"))
    assert code == 2
    assert "unknown key 'epochz'" in err
    assert not (tmp_path / "r").exists()


def test_train_unknown_model_and_dataset(run_cli, tmp_path, data_home):
    code, _, err = run_cli("train", "--data", "ml-100k", "--model", "nope", "--out", str(tmp_path / "r"))
    assert code == 2 and "unknown model 'nope'" in err and "mf" in err
    code, _, err = run_cli("train", "--data", str(tmp_path / "missing"), "--model", "mf",
                           "--out", str(tmp_path / "r"))
    assert code == 2 and "missing" in err


def test_evaluate_missing_run(run_cli, tmp_path):
    code, _, err = run_cli("evaluate", str(tmp_path / "norun"))
    assert code == 2 and "does not exist" in err


def test_config_file_and_set_precedence(run_cli, tmp_path, data_home):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[model]\nname = "itemknn"\nk = 20\n[data]\nsplit = "given:u2"\n')
    code, out, _ = run_cli("train", "--data", "ml-100k", "--config", str(cfg), "--set", "k=30",
                           "--out", str(tmp_path / "r"), "--quiet", "--json")
    assert code == 0
    res = json.loads(out)
    assert res["model"] == "itemknn" and res["split"] == "given:u2"
    written = (tmp_path / "r" / "config.toml").read_text()
    assert "k = 30" in written and 'split = "given:u2"' in written


def test_no_traceback_from_the_real_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "semrec", "evaluate", str(tmp_path / "nothing")],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr and "error:" in proc.stderr


def test_a_run_folder_carries_its_plots_and_tensorboard_logs(runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = runs / "mf"
    for name in ("learning_curve.png", "metrics_at_k.png"):
        assert (run / name).stat().st_size > 1000, name
    events = EventAccumulator(str(run / "tensorboard")).Reload()
    tags = events.Tags()["scalars"]
    assert any("loss" in t for t in tags) and any("ndcg@20" in t for t in tags), tags
    assert len(events.Scalars(next(t for t in tags if t.endswith("loss")))) == 5  # one point per epoch


# ------------------------------------------------------------------ a busy machine (issue 20)


def test_the_demo_keeps_to_its_time_budget(run_cli, tmp_path, data_home):
    # a busy machine trains fewer epochs rather than keep a new user waiting
    code, out, _ = run_cli("demo", "--out", str(tmp_path / "demo"), "--epochs", "5", "--seconds", "0.001")
    assert code == 0
    assert "(1 epoch in" in out and "the 0.001s budget ended training early" in out
    recommended = out.split("semrec recommends for user 1:")[1].strip().splitlines()
    assert [line.split(".")[0].strip() for line in recommended[:10]] == [str(r) for r in range(1, 11)]
    assert not (tmp_path / "demo" / "tensorboard").exists()


def test_every_command_that_computes_applies_the_thread_rule(run_cli, runs, monkeypatch):
    import torch

    from semrec.train import threads

    monkeypatch.setattr(threads, "auto_threads", lambda: 2)
    try:
        for args in (["evaluate", str(runs / "mf")], ["recommend", str(runs / "mf"), "--user", "1"],
                     ["similar", str(runs / "mf"), "--item", "50"]):
            threads.use_threads(1)
            assert run_cli(*args)[0] == 0
            assert torch.get_num_threads() == 2, args
    finally:
        threads.use_threads(1)


def test_evaluate_reports_rmse_and_mae_of_a_rating_run(run_cli, rated_books, tmp_path):
    # failed before the fix (3433209): evaluate printed ranking metrics only, and a bare
    # --set task=rating was refused as ambiguous
    out = tmp_path / "rating"
    code, _, err = run_cli("train", "--data", str(rated_books), "--model", "semgraph", "--split", "random",
                           "--set", "task=rating", "--set", "epochs=3", "--set", "dim=8", "--quiet",
                           "--out", str(out))
    assert code == 0, err
    trained = json.loads((out / "metrics.json").read_text())["test"]
    code, stdout, _ = run_cli("evaluate", str(out), "--json")
    assert code == 0
    metrics = json.loads(stdout)["metrics"]
    assert metrics["rmse"] == pytest.approx(trained["rmse"], rel=1e-5)
    assert metrics["mae"] == pytest.approx(trained["mae"], rel=1e-5)
    assert "ndcg@20" in metrics
    code, stdout, _ = run_cli("evaluate", str(out))
    assert "rmse" in stdout and "mae" in stdout


def test_train_says_loudly_when_items_csv_describes_other_items(run_cli, tmp_path):
    folder = tmp_path / "shop"
    folder.mkdir()
    (folder / "interactions.csv").write_text(
        "user_id,item_id\n" + "".join(f"u{u},i{i}\n" for u in range(6) for i in range(u % 3, u % 3 + 4)))
    (folder / "items.csv").write_text("item_id,title\ni0,Heat\ni1,Up\n")
    code, _, err = run_cli("train", "--data", str(folder), "--model", "popularity", "--split", "leave-one-out",
                           "--out", str(tmp_path / "third"))
    assert code == 0
    assert "note: items.csv describes only 2 of the 6 items in the interactions (33%" in err
    (folder / "items.csv").write_text("item_id,title\n0,Heat\n1,Up\n")
    code, _, err = run_cli("train", "--data", str(folder), "--model", "popularity", "--split", "leave-one-out",
                           "--out", str(tmp_path / "none"))
    assert code == 2 and "none of its 2 item ids occurs in the interactions" in err
    assert not (tmp_path / "none").exists()


# ------------------------------------------------------------------ mistakes found by trying (issue 20)


@pytest.mark.parametrize("args,message", [
    (["--set", "split_seed=-1"], "data.split_seed must be a whole number >= 0, got -1"),
    (["--set", "lr=nan"], "lr: expected a finite number, got nan"),
    (["--set", "dim=100000000000000000000000"], "is too large"),
    (["--model", "itemknn", "--set", "k=0"], "model.k"),
    (["--set", "text.encoder=/models/minilm"], "text.encoder: model 'mf' reads no text"),
    (["--set", "task=rating"], "model 'mf' has no rating head"),
    (["--out", ""], "expected the name of the run folder to write"),
])
def test_train_mistakes_are_one_error_line(tmp_path, args, message):
    # each raised a traceback (or, for the text setting, was silently ignored) before the fixes
    # of issue 20 (3433209); the real entry point, as a user runs it
    data = tmp_path / "shop"
    data.mkdir()
    (data / "interactions.csv").write_text(
        "user_id,item_id\n" + "".join(f"u{u},i{i}\n" for u in range(6) for i in range(u % 3, u % 3 + 4)))
    cmd = ["train", "--data", str(data), "--model", "mf", "--split", "leave-one-out", "--out", str(tmp_path / "r")]
    for i in range(0, len(args), 2):  # later options win: replace --model/--out, append --set
        if args[i] in cmd and args[i] != "--set":
            cmd[cmd.index(args[i]) + 1] = args[i + 1]
        else:
            cmd += args[i:i + 2]
    proc = subprocess.run([sys.executable, "-m", "semrec", *cmd], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and message in proc.stderr


def test_a_binary_config_file_is_one_error_line(tmp_path):
    config = tmp_path / "c.toml"
    config.write_bytes(bytes(range(256)))
    proc = subprocess.run([sys.executable, "-m", "semrec", "train", "--data", "ml-100k", "--config", str(config),
                           "--out", str(tmp_path / "r")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "c.toml: not a TOML text file: byte 0x80 on line 2 is not UTF-8" in proc.stderr


def test_paths_that_cannot_be_written_are_one_error_line(run_cli, runs, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = run_cli("runs", "plot", str(runs), "--out", str(blocker / "chart.png"))
    assert code == 2 and "error: Not a directory" in err
    code, _, err = run_cli("runs", "plot", str(runs), "--out", str(tmp_path / "chart.txt"))
    assert code == 2 and "expected an image file name ending in .png" in err


def test_models_lists_every_name_in_its_own_column(run_cli):
    from semrec.models.catalog import MODELS

    code, out, _ = run_cli("models")
    assert code == 0
    rows = [line.split() for line in out.splitlines()]
    assert [row[0] for row in rows] == list(MODELS)  # "graphfilter-text" was glued to "fitted"
    assert all(row[1] in ("fitted", "trainable") for row in rows)
