"""A text-only semgraph run ranks a catalogue it has never seen (zero-shot transfer)."""
import json

import pytest

from semrec.pipeline import build_config, train_and_save


@pytest.fixture(scope="session")
def text_only_run(tastes, tmp_path_factory):
    """Trained on the tastes catalogue (science fiction and romance), no ID anywhere."""
    out = tmp_path_factory.mktemp("runs") / "text-only"
    config = build_config("semgraph", split="leave-one-out", sets=[
        "ids=false", "progress=false", "seed=0", "epochs=15", "dim=16", "hidden=32", "lr=0.01",
        "batch_size=64", "knn=5", "patience=100", "max_len=10"])
    train_and_save(str(tastes), config, out)
    return out


def test_evaluate_and_recommend_on_another_dataset_without_training(run_cli, text_only_run, books):
    code, out, err = run_cli("evaluate", str(text_only_run), "--data", str(books), "--split", "leave-one-out",
                             "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["dataset"] == books.name and result["transferred_from"] == str(text_only_run)
    assert result["metrics"]["ndcg@10"] > 0.3  # sci-fi readers get sci-fi books, cooks get cookbooks
    code, out, err = run_cli("recommend", str(text_only_run), "--data", str(books), "--user", "u0", "-k", "2",
                             "--json")
    assert code == 0, err
    items = [x["item"] for x in json.loads(out)["items"]]
    assert all(i.startswith("b") and int(i[1:]) < 8 for i in items)  # u0 reads science fiction (2 left unread)


def test_a_transferred_run_is_served_like_any_run(run_cli, serve, text_only_run, books, tmp_path):
    moved = tmp_path / "on-books"
    code, _, err = run_cli("transfer", str(text_only_run), "--data", str(books), "--split", "leave-one-out",
                           "--out", str(moved))
    assert code == 0, err
    srv = serve(moved)
    cooks = srv.client.get("/recommend", params={"user": "u30", "k": 2}).json()["items"]
    assert all(int(x["item"][1:]) >= 8 for x in cooks)  # u30 cooks: cookbooks, from a catalogue never trained on
    srv.client.post("/events", json={"user": "u30", "item": "b1"})  # one sci-fi book: the tower reads it
    after = srv.client.get("/recommend", params={"user": "u30", "k": 2}).json()["items"]
    assert after != cooks


def test_only_a_text_only_run_can_move(run_cli, tastes, books, tmp_path):
    run = tmp_path / "with-ids"
    config = build_config("semgraph", split="leave-one-out", sets=["progress=false", "epochs=1", "dim=8",
                                                                   "hidden=8", "tensorboard=false"])
    train_and_save(str(tastes), config, run)
    code, _, err = run_cli("evaluate", str(run), "--data", str(books))
    assert code == 2 and "--set ids=false" in err and "Traceback" not in err
