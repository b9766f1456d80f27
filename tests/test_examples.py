"""The example scripts run as a user runs them, and show what they say they show."""
from __future__ import annotations

import runpy
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_python_api_example_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["python_api.py", str(tmp_path / "bookshop")])
    runpy.run_path(str(REPO / "examples" / "python_api.py"), run_name="__main__")  # its own asserts too
    out = capsys.readouterr().out
    assert "Recommender('semgraph', 90 users, 15 items)" in out
    assert "space-new" in out  # the new item was recommended right away
    assert "loaded, it answers identically" in out
    assert (tmp_path / "bookshop" / "run.json").is_file()
