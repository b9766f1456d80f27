"""Text models end to end through the CLI on a small generic folder with item text."""
import json

import pytest


@pytest.fixture(scope="module")
def folder(books):
    return books


@pytest.mark.parametrize("model", ["semantic", "semgraph"])
def test_text_model_trains_serves_and_answers_free_text(run_cli, folder, tmp_path, model):
    out = tmp_path / model
    sets = ["--set", "epochs=3", "--set", "dim=16", "--set", "batch_size=64"] if model == "semgraph" else []
    code, out_json, err = run_cli("train", "--data", str(folder), "--model", model, "--split", "leave-one-out",
                                  "--out", str(out), "--quiet", "--json", *sets)
    assert code == 0, err
    assert json.loads(out_json)["n_test_users"] == 40
    run = json.loads((out / "run.json").read_text())
    assert run["text_encoder"]["dim"] == 384 and len(run["text_encoder"]["fingerprint"]) == 64
    assert (out / "knn.safetensors").is_file()

    code, out_json, _ = run_cli("similar", str(out), "--text", "spaceships and aliens", "-k", "4", "--json")
    assert code == 0
    found = [it["item"] for it in json.loads(out_json)["items"]]
    assert sum(int(i[1:]) < 8 for i in found) >= 3, found  # mostly sci-fi

    code, out_json, _ = run_cli("recommend", str(out), "--user", "u0", "-k", "5", "--json")
    assert code == 0
    items = json.loads(out_json)["items"]
    assert len(items) == 5 and all(it["title"] for it in items)


def test_free_text_on_a_model_without_text_is_a_clear_error(run_cli, folder, tmp_path):
    out = tmp_path / "pop"
    code, _, _ = run_cli("train", "--data", str(folder), "--model", "popularity", "--split", "leave-one-out",
                         "--out", str(out), "--quiet")
    assert code == 0
    code, _, err = run_cli("similar", str(out), "--text", "space")
    assert code == 2 and "trained without text" in err
