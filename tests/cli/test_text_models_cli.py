"""Text models end to end through the CLI on a small generic folder with item text."""
import json

import numpy as np
import pandas as pd
import pytest

SCIFI = ["Starship voyage to a distant galaxy", "Alien invasion of a space station", "Robots rebel on Mars",
         "Time machine adventure across centuries", "Astronauts lost near a black hole",
         "Laser battle between star fleets", "Colony ship wakes up in deep space", "Android detective on the moon"]
COOKING = ["Baking sourdough bread at home", "Italian pasta and tomato sauce", "Grilling vegetables in summer",
           "French pastry and croissants", "Quick vegetarian curry recipes", "Chocolate cake for birthdays",
           "Slow-cooked beef stew", "Fresh salads with citrus dressing"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """Users 0-19 read sci-fi, users 20-39 read cooking; item text says which is which."""
    root = tmp_path_factory.mktemp("books")
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        pool = range(0, 8) if u < 20 else range(8, 16)
        for i in rng.choice(list(pool), size=6, replace=False):
            rows.append((f"u{u}", f"b{i}", 1_000 + len(rows)))
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_csv(root / "interactions.csv", index=False)
    pd.DataFrame({"item_id": [f"b{i}" for i in range(16)], "title": SCIFI + COOKING}).to_csv(
        root / "items.csv", index=False)
    return root


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
