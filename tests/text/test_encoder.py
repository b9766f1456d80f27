"""TextEncoder on the real packaged MiniLM: shapes, norms, meaning, truncation, plain
Hugging Face folders, fingerprints and errors."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from semrec.text.encoder import EncoderError, TextEncoder, default_model_path, folder_fingerprint

SENTENCES = [
    "A spaceship crew explores a distant galaxy.",
    "Astronauts travel to another star system aboard a starship.",
    "How to bake sourdough bread at home.",
]


def test_shape_dtype_and_unit_norm(minilm: TextEncoder) -> None:
    emb = minilm.encode(SENTENCES)
    assert emb.shape == (3, 384)
    assert emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert minilm.dim == 384
    assert minilm.max_seq_length == 256
    assert minilm.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert minilm.kind == "sentence-transformers"


def test_similar_sentences_are_closer_than_unrelated(minilm: TextEncoder) -> None:
    a, b, c = minilm.encode(SENTENCES)
    assert a @ b > a @ c + 0.2
    assert a @ b > b @ c + 0.2


def test_matches_sentence_transformers_and_keeps_order(minilm: TextEncoder) -> None:
    texts = ["short", "a somewhat longer sentence about trains and stations", "mid length text"]
    ours = minilm.encode(texts, batch_size=2)
    direct = minilm._backend.model.encode(texts, normalize_embeddings=True, batch_size=2)
    np.testing.assert_allclose(ours, direct, atol=1e-5)


def test_empty_text_is_zero_vector(minilm: TextEncoder) -> None:
    emb = minilm.encode(["", "   ", "cat"])
    assert np.all(emb[:2] == 0)
    assert np.linalg.norm(emb[2]) == pytest.approx(1.0, abs=1e-5)
    assert minilm.encode([]).shape == (0, 384)


def test_long_text_is_truncated_not_an_error(minilm: TextEncoder) -> None:
    long_text = " ".join(["robot"] * 5000)
    prefix = " ".join(["robot"] * 300)  # already past 256 tokens
    emb = minilm.encode([long_text, prefix])
    assert emb.shape == (2, 384)
    np.testing.assert_allclose(emb[0], emb[1], atol=1e-5)  # both cut at 256 tokens


@pytest.fixture(scope="module")
def hf_folder(minilm: TextEncoder, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The MiniLM transformer and tokenizer saved as a plain Hugging Face folder."""
    folder = tmp_path_factory.mktemp("plain-hf")
    st = minilm._backend.model
    st[0].auto_model.save_pretrained(folder)
    st.tokenizer.save_pretrained(folder)
    assert not (folder / "modules.json").exists()
    return folder


@pytest.fixture(scope="module")
def hf_encoder(hf_folder: Path, no_network) -> TextEncoder:  # noqa: ANN001
    with no_network():
        return TextEncoder(hf_folder, device="cpu", progress=False)


def test_plain_hf_folder_mean_pools_like_sentence_transformers(
    minilm: TextEncoder, hf_encoder: TextEncoder, hf_folder: Path
) -> None:
    enc = hf_encoder
    assert enc.kind == "huggingface"
    assert enc.dim == 384
    assert enc.name == hf_folder.name
    np.testing.assert_allclose(enc.encode(SENTENCES), minilm.encode(SENTENCES), atol=1e-4)
    long = enc.encode([" ".join(["word"] * 600)])  # past the 256-token limit: cut, not an error
    assert long.shape == (1, 384)


def test_fingerprint_tracks_content_not_location(
    minilm: TextEncoder, hf_encoder: TextEncoder, hf_folder: Path, tmp_path: Path
) -> None:
    fp = minilm.fingerprint
    assert len(fp) == 64 and fp == minilm.fingerprint
    assert hf_encoder.fingerprint != fp  # other files, other pooling config
    settings = {"kind": "huggingface"}
    copy = shutil.copytree(hf_folder, tmp_path / "copy")
    assert folder_fingerprint(copy, settings) == folder_fingerprint(hf_folder, settings)
    # "fine-tuned" weights: one changed byte deep inside the weights file
    weights = copy / "model.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    weights.write_bytes(bytes(raw))
    assert folder_fingerprint(copy, settings) != folder_fingerprint(hf_folder, settings)
    # a README does not change what the model computes
    (hf_folder / "README.md").write_text("notes")
    other = shutil.copytree(hf_folder, tmp_path / "c2")
    (other / "README.md").unlink()
    assert folder_fingerprint(hf_folder, settings) == folder_fingerprint(other, settings)


def test_max_seq_length_changes_fingerprint(hf_encoder: TextEncoder, hf_folder: Path) -> None:
    short = TextEncoder(hf_folder, device="cpu", progress=False, max_seq_length=16)
    assert short.max_seq_length == 16
    assert short.fingerprint != hf_encoder.fingerprint
    with pytest.raises(EncoderError, match="longer than the model"):
        TextEncoder(hf_folder, device="cpu", max_seq_length=4096)


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="does not exist"):
        TextEncoder(tmp_path / "nope")
    with pytest.raises(EncoderError, match="never downloads"):
        TextEncoder("sentence-transformers/all-MiniLM-L6-v2")


def test_not_a_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(EncoderError, match="not a model folder"):
        TextEncoder(tmp_path)
    with pytest.raises(EncoderError, match="is a file"):
        TextEncoder(tmp_path / "notes.txt")
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(EncoderError, match="no weights"):
        TextEncoder(tmp_path)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(EncoderError, match="batch_size"):
        TextEncoder(default_model_path(), batch_size=0)
