"""Half-precision serving embeddings: half the bytes, the same recommendations."""
from __future__ import annotations

import shutil

import pytest
import torch
from safetensors.torch import load_file

from semrec.artifacts.run import load_run
from semrec.errors import SemrecError
from semrec.evaluate.ranking import evaluate_ranking
from semrec.inference.known import recommend
from semrec.serve.precision import cast_embeddings


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_a_half_precision_run_loads_evaluates_and_recommends_as_before(mf_run, tmp_path, dtype):
    half = tmp_path / dtype
    shutil.copytree(mf_run, half)
    before = (mf_run / "embeddings.safetensors").stat().st_size
    cast_embeddings(half, dtype)
    stored = load_file(str(half / "embeddings.safetensors"))
    assert all(t.dtype == getattr(torch, dtype) for t in stored.values())
    assert (half / "embeddings.safetensors").stat().st_size < 0.6 * before
    full_run, half_run = load_run(mf_run), load_run(half)
    assert half_run.scorer.item_emb.dtype == torch.float32  # upcast once at load
    a = evaluate_ranking(full_run.scorer, full_run.split, ks=(10,))
    b = evaluate_ranking(half_run.scorer, half_run.split, ks=(10,))
    assert b["recall@10"] == pytest.approx(a["recall@10"], abs=0.02)
    user = full_run.users.ids[0]
    top_full = [it["item"] for it in recommend(full_run, user, 10)]
    top_half = [it["item"] for it in recommend(half_run, user, 10)]
    assert len(set(top_full) & set(top_half)) >= 8


def test_a_run_without_embeddings_is_a_clear_error(tmp_path):
    with pytest.raises(SemrecError, match="no embeddings in this run"):
        cast_embeddings(tmp_path)
