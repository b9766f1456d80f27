"""Fine-tuning the text encoder: LoRA trains only adapters, the rating head learns a toy
signal, alignment moves item vectors towards a graph run, and the result is a normal
encoder folder with a new fingerprint."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from finetune_toy import FAST, RATING_SPLIT

from semrec.errors import ConfigError
from semrec.finetune.align import align_loss, knn_overlap
from semrec.finetune.model import TrainableEncoder, base_path
from semrec.finetune.trainer import FinetuneConfig, build_finetune_config, finetune
from semrec.text.encoder import TextEncoder


@pytest.fixture(scope="module")
def base_fingerprint() -> str:
    return TextEncoder(device="cpu", progress=False).fingerprint


def test_lora_trains_only_adapter_parameters():
    enc = TrainableEncoder(base_path(None), lora_r=4, max_seq_length=32)
    trainable, total = enc.count_parameters()
    names = enc.trainable_names()
    assert names and all("lora_" in n for n in names)
    # r=4 adapters on the 6 blocks' linears: (d_in + d_out) * 4 per layer, well under 2 %
    assert 0 < trainable < 0.02 * total
    top = TrainableEncoder(base_path(None), lora_r=4, lora_layers=2, max_seq_length=32)
    top_names = top.trainable_names()
    assert top_names and all(".layer.4." in n or ".layer.5." in n for n in top_names)
    assert top.count_parameters()[0] == pytest.approx(trainable / 3, rel=1e-6)
    # gradients reach the adapters only
    loss = enc(["a starship", "a cake"]).sum()
    loss.backward()
    with_grad = [n for n, p in enc.st.named_parameters() if p.grad is not None]
    assert with_grad and all("lora_" in n for n in with_grad)


def test_full_finetuning_trains_every_weight():
    enc = TrainableEncoder(base_path(None), full=True, max_seq_length=32)
    trainable, total = enc.count_parameters()
    assert trainable == total


def test_rating_head_learns_and_the_folder_is_a_new_encoder(rated_books, tmp_path, base_fingerprint):
    out = tmp_path / "enc"
    config = build_finetune_config(FAST + ["profile_items=0", "head_lr=0.01", "patience=0",
                                           "baseline=true"])
    summary = finetune(rated_books, "rating", out, config=config, split="random:0.7/0.15/0.15")
    history = summary["history"]
    assert [r["step"] for r in history] == [5, 10]
    # the validation RMSE goes down from the untrained head (which predicts the mean)
    assert summary["metrics"]["valid"]["rmse"] < summary["metrics"]["valid_rmse_before"] - 0.05
    assert summary["metrics"]["test"]["n"] > 0 and np.isfinite(summary["metrics"]["test"]["rmse"])
    assert summary["baseline_frozen"]["test"]["n"] == summary["metrics"]["test"]["n"]
    assert summary["method"] == "lora" and summary["trainable_params"] < 0.05 * summary["total_params"]

    enc = TextEncoder(out, device="cpu", progress=False)
    assert enc.kind == "sentence-transformers" and enc.dim == 384
    assert enc.max_seq_length == 256  # the base model's own limit, not the training one
    assert enc.fingerprint != base_fingerprint
    assert summary["fingerprint"] == enc.fingerprint and summary["base_fingerprint"] == base_fingerprint
    base_vecs = TextEncoder(device="cpu", progress=False).encode(["Robots rebel on Mars"])
    assert not np.allclose(enc.encode(["Robots rebel on Mars"]), base_vecs, atol=1e-5)
    saved = json.loads((out / "finetune.json").read_text())
    assert saved["config"]["max_steps"] == 10 and saved["metrics"]["test"]["rmse"] > 0
    assert saved["base_fingerprint"] == base_fingerprint
    assert (out / "learning_curve.png").stat().st_size > 1000
    assert not any(p.name.startswith("adapter_") for p in out.iterdir())  # adapters merged


def test_rating_ensemble_blends_the_text_model_with_a_graph_rating_head(rated_books, rating_run, tmp_path):
    from semrec.data.load import load_dataset
    from semrec.data.split import make_split
    from semrec.finetune.data import rating_data
    from semrec.finetune.rating import load_rating_head
    from semrec.finetune.trainer import _eval_rating

    split = RATING_SPLIT
    out = tmp_path / "enc"
    config = build_finetune_config(FAST + ["profile_items=0", "head_lr=0.01", "patience=0"])
    summary = finetune(rated_books, "rating", out, config=config, split=split, graph=rating_run)
    m = summary["metrics"]
    ens = m["ensemble"]
    assert ens["test"]["n"] == m["test"]["n"] and ens["graph"]["test"]["n"] == m["test"]["n"]
    # the blend contains each model alone (weights (0, 1, 0) and (0, 0, 1)), and it is fitted
    # by least squares on validation: it cannot do worse there than either model
    assert ens["valid"]["rmse"] <= min(m["valid"]["rmse"], ens["graph"]["valid"]["rmse"]) + 1e-9
    assert set(ens["weights"]) == {"bias", "text", "graph"}

    # the head is saved beside the encoder: loading both reproduces the reported test RMSE
    head = load_rating_head(out)
    enc = TrainableEncoder(out, full=True, max_seq_length=32)
    ds = load_dataset(rated_books)
    data = rating_data(ds, make_split(ds, split), profile_items=0, seed=0)
    assert _eval_rating(enc, head, data, data.test)[0]["rmse"] == pytest.approx(m["test"]["rmse"], abs=1e-3)


def test_rating_ensemble_needs_a_rating_run(rated_books, graph_run, tmp_path):
    config = build_finetune_config(FAST)
    with pytest.raises(ConfigError, match="rating head"):
        finetune(rated_books, "rating", tmp_path / "enc", config=config, graph=graph_run, split="cold-items:0.2")


def test_blend_recovers_known_weights_and_clips():
    from semrec.finetune.ensemble import apply_blend, fit_blend

    rng = np.random.default_rng(0)
    a, b = rng.uniform(1, 5, 200), rng.uniform(1, 5, 200)
    coef = fit_blend([a, b], 0.5 + 0.3 * a + 0.6 * b)
    assert coef == pytest.approx([0.5, 0.3, 0.6], abs=1e-9)
    out = apply_blend(np.array([10.0, 1.0]), [np.array([-20.0, 0.0, 2.0])], (1.0, 5.0))
    assert out.tolist() == [1.0, 5.0, 5.0]  # -10 -> 1, 10 -> 5, 12 -> 5


def test_align_pulls_item_vectors_towards_the_graph(rated_books, graph_run, tmp_path):
    config = build_finetune_config(FAST + ["epochs=50", "max_steps=12", "eval_every=4", "lr=0.003",
                                           "head_lr=0.003", "patience=0", "temperature=0.2", "batch_size=8"])
    summary = finetune(rated_books, "align", tmp_path / "aligned", config=config, graph=graph_run)
    assert summary["split"] == "cold-items:0.2"  # the graph run's own split
    m = summary["metrics"]
    assert summary["steps"] == 12
    # the encoder's own similarities now agree more with the graph's on the training items
    assert m["similarity_correlation"]["train_after"] > m["similarity_correlation"]["train_before"]
    # and the same (final) projection fits the tuned encoder's vectors better than the base's
    assert m["cosine_to_graph"]["after"] > m["cosine_to_graph"]["before"]
    assert m["valid_loss"] <= m["valid_loss_before"]
    assert set(m["cold"]["before"]) == set(m["cold"]["after"]) and "recall@20" in m["cold"]["after"]
    assert TextEncoder(tmp_path / "aligned", device="cpu", progress=False).fingerprint == summary["fingerprint"]


def test_align_loss_is_symmetric_infonce():
    torch.manual_seed(0)
    a, b = torch.randn(6, 4), torch.randn(6, 4)
    assert align_loss(a, a.clone(), 0.1) < align_loss(a, b, 0.1)
    assert float(align_loss(a, b, 0.5)) == pytest.approx(float(align_loss(b, a, 0.5)), rel=1e-6)


def test_knn_overlap_by_hand():
    x = np.array([[1.0, 0], [0.9, 0.1], [0, 1.0], [0.1, 0.9]])
    assert knn_overlap(x, x, k=1) == 1.0
    swapped = np.array([[0, 1.0], [0.1, 0.9], [1.0, 0], [0.9, 0.1]])  # same pairs: 0-1, 2-3
    assert knn_overlap(x, swapped, k=1) == 1.0
    crossed = np.array([[1.0, 0], [0, 1.0], [0.9, 0.1], [0.1, 0.9]])  # pairs 0-2, 1-3
    assert knn_overlap(x, crossed, k=1) == 0.0


@pytest.mark.parametrize(
    ("sets", "needle"),
    [
        (["lora_r=abc"], "lora_r"),
        (["nope=1"], "unknown key 'nope'"),
        (["batch_size=0"], "batch_size"),
        (["lora_dropout=1.5"], "lora_dropout"),
        (["temperature=-1"], "temperature"),
    ],
)
def test_bad_settings_name_the_field(sets, needle):
    with pytest.raises(ConfigError, match=needle):
        build_finetune_config(sets)


def test_defaults_pick_the_learning_rate_by_method():
    assert FinetuneConfig().encoder_lr == 5e-4
    assert FinetuneConfig(full=True).encoder_lr == 3e-5
    assert FinetuneConfig(full=True, lr=1e-4).encoder_lr == 1e-4
