"""Issue contract for the text layer: encode reports and caches; similar finds meaning."""
import json

import pytest

from semrec.cli.main import main


@pytest.fixture(scope="module")
def semantic_run(tmp_path_factory, data_home):
    out = tmp_path_factory.mktemp("runs") / "semantic"
    with pytest.raises(SystemExit) as exc:
        main(["train", "--data", "ml-100k", "--model", "semantic", "--split", "given:u1", "--out", str(out),
              "--quiet"])
    assert exc.value.code == 0
    return out


def test_second_encode_encodes_nothing(run_cli, tmp_path, monkeypatch, data_home):
    monkeypatch.setenv("SEMREC_CACHE", str(tmp_path / "cache"))
    code, out, _ = run_cli("encode", "ml-100k", "--json", "--quiet")
    assert code == 0
    first = json.loads(out)
    assert first["encoded"] > 1500 and first["cached"] == 0 and first["texts_per_s"] > 0
    assert first["dim"] == 384
    code, out, _ = run_cli("encode", "ml-100k", "--json", "--quiet")
    second = json.loads(out)
    assert second["encoded"] == 0 and second["cached"] == first["encoded"]


def test_star_wars_text_neighbours_are_space_adventures(run_cli, semantic_run):
    code, out, _ = run_cli("similar", str(semantic_run), "--item", "50", "-k", "10", "--json")
    assert code == 0
    res = json.loads(out)
    titles = [it["title"] for it in res["items"]]
    assert "Return of the Jedi (1983)" in titles
    assert "Empire Strikes Back, The (1980)" in titles
    assert "Star Wars (1977)" not in titles
    assert set(res["items"][0]) == {"item", "score", "title"}


def test_free_text_query_finds_on_topic_items(run_cli, semantic_run):
    code, out, _ = run_cli("similar", str(semantic_run), "--text", "a film about time travel", "-k", "5",
                           "--json")
    assert code == 0
    titles = " ".join(it["title"] for it in json.loads(out)["items"]).lower()
    assert "time" in titles or "future" in titles


def test_similar_needs_exactly_one_query(run_cli, semantic_run):
    code, _, err = run_cli("similar", str(semantic_run))
    assert code == 2 and "exactly one of --item" in err
    code, _, err = run_cli("similar", str(semantic_run), "--item", "99999")
    assert code == 2 and "unknown item '99999'" in err


def test_encode_with_a_missing_model_folder_is_a_clear_error(run_cli, tmp_path, data_home):
    code, _, err = run_cli("encode", "ml-100k", "--model", str(tmp_path / "no-model"))
    assert code == 2 and "no-model" in err and "Traceback" not in err
