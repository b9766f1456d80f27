"""``semrec finetune`` through the CLI: the happy path and the user's mistakes."""
from __future__ import annotations

import json

import pytest
from finetune_toy import FAST, RATING_SPLIT


def _sets(*extra: str) -> list[str]:
    return [x for s in (*FAST, *extra) for x in ("--set", s)]


def test_finetune_rating_writes_an_encoder_that_train_accepts(run_cli, rated_books, tmp_path):
    out = tmp_path / "enc"
    code, stdout, err = run_cli("finetune", "--data", str(rated_books), "--objective", "rating",
                                "--split", "random:0.7/0.15/0.15", *_sets("max_steps=4", "eval_every=2"),
                                "--out", str(out), "--quiet")
    assert code == 0, err
    assert "test rmse" in stdout and "valid rmse" in stdout and "4 steps" in stdout
    summary = json.loads((out / "finetune.json").read_text())
    assert summary["metrics"]["test"]["rmse"] > 0 and summary["steps"] == 4
    fingerprint = stdout.split("fingerprint ")[1].split()[0]
    assert fingerprint != summary["base_fingerprint"][:16]

    run = tmp_path / "run"
    code, stdout, err = run_cli("train", "--data", str(rated_books), "--model", "semantic", "--split",
                                "leave-one-out", "--set", f"text.encoder={out}", "--out", str(run),
                                "--quiet", "--json")
    assert code == 0, err
    info = json.loads((run / "run.json").read_text())
    assert info["text_encoder"]["fingerprint"].startswith(fingerprint)


def test_finetune_rating_with_a_graph_run_prints_the_blend(run_cli, rated_books, rating_run, tmp_path):
    code, stdout, err = run_cli("finetune", "--data", str(rated_books), "--objective", "rating",
                                "--split", RATING_SPLIT, "--graph", str(rating_run),
                                *_sets("max_steps=2", "eval_every=2"), "--out", str(tmp_path / "enc"), "--quiet")
    assert code == 0, err
    assert "graph run alone: valid rmse" in stdout
    blend = next(line for line in stdout.splitlines() if "blend" in line)
    assert "*text" in blend and "*graph" in blend and "test rmse" in blend
    assert (tmp_path / "enc" / "rating_head.safetensors").is_file()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--objective", "regress"], "unknown objective 'regress'"),
        (["--objective", "align"], "needs --graph"),
        (["--objective", "rating", "--set", "lora_r=big"], "lora_r"),
        (["--objective", "rating", "--set", "epochz=2"], "epochz"),
        (["--objective", "rating", "--encoder", "/nonexistent/model"], "does not exist"),
    ],
)
def test_finetune_mistakes_are_one_line_errors(run_cli, rated_books, tmp_path, args, needle):
    code, _, err = run_cli("finetune", "--data", str(rated_books), *args, "--out", str(tmp_path / "x"), "--quiet")
    assert code == 2
    assert err.startswith("error:") and needle in err, err
    assert not (tmp_path / "x").exists()


def test_align_needs_an_embedding_run(run_cli, rated_books, tmp_path):
    pop = tmp_path / "pop"
    assert run_cli("train", "--data", str(rated_books), "--model", "popularity", "--out", str(pop),
                   "--split", "cold-items:0.2", "--quiet")[0] == 0
    code, _, err = run_cli("finetune", "--data", str(rated_books), "--objective", "align", "--graph", str(pop),
                           *_sets(), "--out", str(tmp_path / "x"), "--quiet")
    assert code == 2 and "no learned item embeddings" in err, err
