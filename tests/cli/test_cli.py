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
