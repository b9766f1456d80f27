"""The on-disk embedding cache: hits, misses, dedup, corrupt and partial files,
concurrent writers."""
from __future__ import annotations

import hashlib
import multiprocessing as mp
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from semrec.text.cache import EmbeddingCache, default_cache_root, encode_texts, text_key
from semrec.text.encoder import TextEncoder


class FakeEncoder:
    """Deterministic vectors from the text's hash; counts what it encodes."""

    name = "fake"
    dim = 8

    def __init__(self, fingerprint: str = "f" * 64) -> None:
        self.fingerprint = fingerprint
        self.calls: list[list[str]] = []

    @staticmethod
    def vector(text: str) -> np.ndarray:
        seed = int.from_bytes(hashlib.sha1(text.encode()).digest()[:4], "little")
        v = np.random.default_rng(seed).standard_normal(FakeEncoder.dim).astype(np.float32)
        return v / np.linalg.norm(v)

    def encode(
        self, texts: Sequence[str], batch_size: int | None = None, progress: bool | None = None
    ) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, t in enumerate(texts):
            if t.strip():
                out[i] = self.vector(t)
        return out

    @property
    def n_encoded(self) -> int:
        return sum(len(c) for c in self.calls)


def expected(texts: Sequence[str]) -> np.ndarray:
    zero = np.zeros(FakeEncoder.dim, np.float32)
    return np.stack([FakeEncoder.vector(t) if t.strip() else zero for t in texts])


def test_second_run_encodes_nothing_with_the_real_model(minilm: TextEncoder, tmp_path: Path) -> None:
    texts = ["a film about robots", "a cookbook for soups", "a film about robots"]
    cache = EmbeddingCache(tmp_path)
    first, r1 = encode_texts(minilm, texts, cache=cache)
    assert (r1.encoded, r1.cached, r1.unique) == (2, 0, 2)
    second, r2 = encode_texts(minilm, texts, cache=cache)
    assert (r2.encoded, r2.cached) == (0, 2)
    assert second.shape == (3, 384) and second.dtype == np.float32
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(first, minilm.encode(texts), atol=1e-6)
    assert (tmp_path / minilm.fingerprint / "model.json").is_file()


def test_changing_one_text_reencodes_exactly_that_one(tmp_path: Path) -> None:
    enc = FakeEncoder()
    texts = [f"item number {i}" for i in range(10)]
    encode_texts(enc, texts, cache=tmp_path)
    assert enc.n_encoded == 10
    texts[3] = "item number 3, now with a description"
    emb, report = encode_texts(enc, texts, cache=tmp_path)
    assert (report.encoded, report.cached) == (1, 9)
    assert enc.calls[-1] == [texts[3]]
    np.testing.assert_array_equal(emb, expected(texts))


def test_duplicates_and_empty_texts(tmp_path: Path) -> None:
    enc = FakeEncoder()
    texts = ["same", "", "same", "  ", "other", "same"]
    emb, report = encode_texts(enc, texts, cache=tmp_path)
    assert enc.calls == [["same", "other"]]
    assert (report.texts, report.unique, report.empty, report.encoded) == (6, 2, 2, 2)
    np.testing.assert_array_equal(emb, expected(texts))
    assert report.texts_per_s > 0


def test_no_cache_and_per_model_folders(tmp_path: Path) -> None:
    a, b = FakeEncoder("a" * 64), FakeEncoder("b" * 64)
    encode_texts(a, ["x"], cache=tmp_path)
    encode_texts(b, ["x"], cache=tmp_path)  # another model: its own folder, encodes again
    assert b.n_encoded == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a" * 64, "b" * 64]
    _, report = encode_texts(a, ["x"], cache=False)
    assert report.encoded == 1


def test_default_root_follows_semrec_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SEMREC_CACHE", str(tmp_path))
    assert default_cache_root() == tmp_path / "embeddings"
    encode_texts(FakeEncoder(), ["x"])  # cache=True: the default root
    assert EmbeddingCache().segments("f" * 64)
    monkeypatch.delenv("SEMREC_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_root() == tmp_path / "xdg" / "semrec" / "embeddings"


def test_truncated_segment_is_ignored_and_reencoded(tmp_path: Path) -> None:
    enc = FakeEncoder()
    cache = EmbeddingCache(tmp_path)
    encode_texts(enc, ["one", "two"], cache=cache)
    encode_texts(enc, ["three"], cache=cache)
    first = cache.segments(enc.fingerprint)[0]
    first.write_bytes(first.read_bytes()[:50])  # cut mid-file
    with pytest.warns(UserWarning, match="corrupt"):
        emb, report = encode_texts(enc, ["one", "two", "three"], cache=cache)
    assert (report.encoded, report.cached) == (2, 1)
    np.testing.assert_array_equal(emb, expected(["one", "two", "three"]))


def test_flipped_byte_is_caught_by_the_checksum(tmp_path: Path) -> None:
    enc = FakeEncoder()
    cache = EmbeddingCache(tmp_path)
    encode_texts(enc, ["one", "two"], cache=cache)
    seg = cache.segments(enc.fingerprint)[0]
    raw = bytearray(seg.read_bytes())
    raw[-3] ^= 0x01  # inside the vectors
    seg.write_bytes(bytes(raw))
    with pytest.warns(UserWarning, match="corrupt"):
        _, found = cache.get(enc.fingerprint, ["one", "two"], enc.dim)
    assert not found.any()


def test_garbage_and_leftover_temp_files_do_not_break_reads(tmp_path: Path) -> None:
    enc = FakeEncoder()
    cache = EmbeddingCache(tmp_path)
    encode_texts(enc, ["one", "two"], cache=cache)
    folder = cache.folder(enc.fingerprint)
    (folder / ".tmp-deadbeef.part").write_bytes(b"\x00" * 100)  # a killed writer's left-over
    (folder / "seg-garbage.safetensors").write_bytes(b"not a safetensors file")
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        emb, report = encode_texts(enc, ["one", "two"], cache=cache)
    assert report.encoded == 0
    np.testing.assert_array_equal(emb, expected(["one", "two"]))


def test_compaction_merges_segments_without_losing_vectors(tmp_path: Path) -> None:
    enc = FakeEncoder()
    cache = EmbeddingCache(tmp_path, compact_after=3)
    texts = [f"t{i}" for i in range(6)]
    for t in texts:
        encode_texts(enc, [t], cache=cache)
    assert len(cache.segments(enc.fingerprint)) <= 3
    emb, report = encode_texts(enc, texts, cache=cache)
    assert report.encoded == 0
    np.testing.assert_array_equal(emb, expected(texts))


def _writer(root: str, worker: int, rounds: int) -> None:
    enc = FakeEncoder()
    cache = EmbeddingCache(root, compact_after=4)
    for r in range(rounds):
        # overlapping texts between the two workers and between rounds
        texts = [f"text {j}" for j in range(5 * r, 5 * r + 12)] + [f"worker {worker} round {r}"]
        emb, _ = encode_texts(enc, texts, cache=cache)
        if not np.array_equal(emb, expected(texts)):
            raise RuntimeError("a worker read a wrong vector")


def test_two_concurrent_writers_leave_a_readable_cache(tmp_path: Path) -> None:
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 12)) for w in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    enc = FakeEncoder()
    texts = [f"text {j}" for j in range(5 * 11 + 12)]
    texts += [f"worker {w} round {r}" for w in range(2) for r in range(12)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no corrupt segment may be met
        emb, report = encode_texts(enc, texts, cache=EmbeddingCache(tmp_path))
    assert report.encoded == 0
    np.testing.assert_array_equal(emb, expected(texts))
    assert not list(EmbeddingCache(tmp_path).folder(enc.fingerprint).glob(".tmp-*"))


def test_text_key_is_exact() -> None:
    assert text_key("a") != text_key("a ")
    assert len(text_key("é")) == 20
