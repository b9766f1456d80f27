"""Cold start from the command line: `recommend --items/--text/--profile` and the cold
sections of `evaluate --json`, on the books folder (sci-fi readers u0-u19, cooking u20-u39)."""
from __future__ import annotations

import json

import pytest

SCIFI = {f"b{i}" for i in range(8)}
METRIC_KEYS = {"recall@10", "ndcg@10", "recall@20", "ndcg@20", "n_users"}


@pytest.fixture(scope="module")
def runs(books, tmp_path_factory):
    from semrec.cli.main import main

    root = tmp_path_factory.mktemp("cold-cli")
    made = {}
    for name, split, sets in (("semantic", "cold-items:0.25", []),
                              ("mf", "cold-users:0.25/3", ["epochs=10", "dim=8", "batch_size=64", "lr=0.01"])):
        out = root / name
        args = ["train", "--data", str(books), "--model", name, "--split", split, "--out", str(out), "--quiet"]
        with pytest.raises(SystemExit) as exc:
            main(args + [x for s in sets for x in ("--set", s)])
        assert exc.value.code == 0
        made[name] = out
    return made


def test_evaluate_reports_cold_items_ranked_among_themselves(run_cli, runs):
    code, out, err = run_cli("evaluate", str(runs["semantic"]), "--json")
    assert code == 0, err
    result = json.loads(out)
    cold = result["cold"]
    assert cold["entity"] == "items" and cold["n_items"] == 4  # a quarter of 16 items (2 more validate)
    assert METRIC_KEYS <= set(cold) and METRIC_KEYS - {"n_users"} <= set(result["metrics"])
    code, text, _ = run_cli("evaluate", str(runs["semantic"]))
    assert "cold start: 4 held-out items, ranked among themselves" in text


def test_evaluate_reports_cold_users_scored_from_their_first_items(run_cli, runs):
    code, out, err = run_cli("evaluate", str(runs["mf"]), "--json")
    assert code == 0, err
    cold = json.loads(out)["cold"]
    assert cold["entity"] == "users" and cold["support"] == 3 and cold["n_users"] == 10
    assert METRIC_KEYS <= set(cold)


def test_recommend_for_an_anonymous_history(run_cli, runs):
    code, out, err = run_cli("recommend", str(runs["mf"]), "--items", "b0,b1,b2", "-k", "4", "--json")
    assert code == 0, err
    body = json.loads(out)
    assert body["user"] is None and len(body["items"]) == 4
    assert set(body["items"][0]) == {"item", "score", "title"}
    assert not {"b0", "b1", "b2"} & {it["item"] for it in body["items"]}


def test_recommend_for_a_sentence(run_cli, runs):
    code, out, err = run_cli("recommend", str(runs["semantic"]), "--text", "robots and spaceships", "-k", "3",
                             "--json")
    assert code == 0, err
    assert {it["item"] for it in json.loads(out)["items"]} <= SCIFI
    code, out, _ = run_cli("recommend", str(runs["semantic"]), "--text", "robots and spaceships", "-k", "3")
    assert out.startswith("top 3 for a new user")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "give --user ID, or describe a new user"),
        (["--items", "b0,nope"], "unknown item id(s): nope"),
        (["--items", ","], "expected comma-separated item ids"),
        (["--text", "space"], "trained without text"),
        (["--profile", "age"], "expected FIELD=VALUE pairs"),
        (["--profile", "age=3"], "has no user text adapter"),
    ],
)
def test_recommend_mistakes_are_one_line_errors(run_cli, runs, args, message):
    code, _, err = run_cli("recommend", str(runs["mf"]), *args)
    assert code == 2
    assert message in err and "Traceback" not in err
