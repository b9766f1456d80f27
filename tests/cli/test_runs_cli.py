"""``semrec runs list`` and ``semrec runs plot`` over two tiny runs."""
from __future__ import annotations

import json

import numpy as np
import pytest


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    from semrec.pipeline import build_config, train_and_save

    root = tmp_path_factory.mktemp("runs")
    data = root / "data"
    data.mkdir()
    rng = np.random.default_rng(0)
    rows = ["user_id,item_id"] + [f"u{u},{'a' if u < 15 else 'b'}{i}"
                                  for u in range(30) for i in rng.choice(8, size=5, replace=False)]
    (data / "interactions.csv").write_text("\n".join(rows) + "\n")
    split = "random:0.7/0.15/0.15"
    train_and_save(str(data), build_config("popularity", split=split), root / "runs" / "pop")
    train_and_save(str(data), build_config("mf", sets=["epochs=2", "batch_size=64", "dim=8", "progress=false"],
                                           split=split), root / "runs" / "mf")
    (root / "runs" / ".mf.partial-x").mkdir()  # an unfinished run is never listed
    (root / "runs" / ".mf.partial-x" / "run.json").write_text("{}")
    return root / "runs"


def test_runs_list_table_and_json(two_runs, run_cli, monkeypatch):
    code, out, err = run_cli("runs", "list", str(two_runs))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["run", "model", "dataset", "split", "recall@20", "ndcg@20"]
    assert len(lines) == 4 and "partial" not in out
    mf_line = next(line for line in lines if " mf " in line)
    assert "random:0.7/0.15/0.15" in mf_line and "2 (best" in mf_line

    code, out, err = run_cli("runs", "list", str(two_runs), "--json")
    assert code == 0, err
    runs = {r["model"]: r for r in json.loads(out)["runs"]}
    assert set(runs) == {"mf", "popularity"}
    mf, pop = runs["mf"], runs["popularity"]
    assert mf["epochs"] == 2 and mf["max_epochs"] == 2 and pop["epochs"] is None
    assert mf["dataset"] == "data" and 0 <= mf["ndcg@20"] <= 1 and mf["fit_s"] > 0
    saved = json.loads((two_runs / "mf" / "metrics.json").read_text())
    assert mf["recall@10"] == saved["test"]["recall@10"]

    # a run folder itself, sorting, and the current folder by default
    code, out, _ = run_cli("runs", "list", str(two_runs / "mf"), "--json")
    assert [r["model"] for r in json.loads(out)["runs"]] == ["mf"]
    code, out, _ = run_cli("runs", "list", str(two_runs), "--sort", "fit_s", "--json")
    fits = [r["fit_s"] for r in json.loads(out)["runs"]]
    assert fits == sorted(fits)
    monkeypatch.chdir(two_runs)
    code, out, _ = run_cli("runs", "list")
    assert code == 0 and out.splitlines()[2].startswith("mf ")


def test_runs_plot_and_errors(two_runs, run_cli, tmp_path):
    chart = tmp_path / "chart.png"
    code, out, err = run_cli("runs", "plot", str(two_runs), "--out", str(chart))
    assert code == 0, err
    assert "2 runs" in out and chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    code, _, err = run_cli("runs", "plot", str(two_runs), "--out", str(chart), "--metric", "ndcg@7")
    assert code == 2 and "ndcg@7" in err
    code, _, err = run_cli("runs", "list", str(tmp_path / "missing"))
    assert code == 2 and "does not exist" in err
    code, out, _ = run_cli("runs", "list", str(tmp_path))
    assert code == 0 and "no run folders" in out
