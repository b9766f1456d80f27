"""Text embeddings cached on disk by (model fingerprint, exact text).

Layout (``root`` is ``$SEMREC_CACHE/embeddings``, default ``~/.cache/semrec/embeddings``)::

    root/
      <fingerprint>/                 one folder per model (64 hex chars, see TextEncoder.fingerprint)
        model.json                   name, dim, when first written (informative only)
        seg-<time>-<pid>-<rand>.safetensors
                                     an immutable segment: "keys" (n, 20) uint8 = sha1(text, utf-8),
                                     "vectors" (n, d) float32; metadata holds dim, count and a
                                     CRC-32 of both arrays
        .tmp-<rand>.part             a segment being written (ignored by readers)

Every write goes to a temporary file in the same folder, is flushed and fsync'ed, then
renamed into place with :func:`os.replace` (atomic on POSIX and Windows). So an
interrupted run leaves at most a ``.tmp-*.part`` file, which readers never open, and two
concurrent runs each add their own segment: nothing is overwritten, nothing lost.

Segments are never modified. When a folder holds more than ``compact_after`` of them,
the writer merges all it can read into one new segment and only then deletes the ones
it merged, so at every moment each cached vector is in some readable segment.

A segment that is truncated, has a bad checksum or a different width is skipped with a
warning (its texts are simply encoded again), never a crash.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
import warnings
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from semrec.text.encoder import Encoder

SEGMENT_FORMAT = "semrec-embeddings/1"
#: Merge a folder's segments into one when there are more than this many.
DEFAULT_COMPACT_AFTER = 32
#: Temporary files older than this (seconds) are left-overs of a killed run; compaction removes them.
STALE_TMP_SECONDS = 3600.0
_KEY_BYTES = 20  # sha1


def default_cache_root() -> Path:
    """``$SEMREC_CACHE/embeddings``, else ``$XDG_CACHE_HOME/semrec/embeddings``, else
    ``~/.cache/semrec/embeddings``."""
    env = os.environ.get("SEMREC_CACHE")
    if env:
        return Path(env).expanduser() / "embeddings"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "semrec" / "embeddings"


def text_key(text: str) -> bytes:
    """The 20-byte cache key of one text: SHA-1 of its UTF-8 bytes."""
    return hashlib.sha1(text.encode("utf-8", "surrogatepass")).digest()


def _atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see either nothing or all of it."""
    tmp = path.parent / f".tmp-{uuid.uuid4().hex}.part"
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink(missing_ok=True)


def _crc(keys: np.ndarray, vectors: np.ndarray) -> int:
    return zlib.crc32(vectors.tobytes(), zlib.crc32(keys.tobytes()))


def _encode_segment(keys: np.ndarray, vectors: np.ndarray) -> bytes:
    from safetensors.numpy import save

    meta = {
        "format": SEGMENT_FORMAT,
        "dim": str(vectors.shape[1]),
        "count": str(vectors.shape[0]),
        "crc32": str(_crc(keys, vectors)),
    }
    return save({"keys": keys, "vectors": vectors}, metadata=meta)


def _read_segment(path: Path, dim: int) -> tuple[np.ndarray, np.ndarray] | str:
    """``(keys (n, 20) uint8, vectors (n, dim) float32)``; else why not: ``"gone"`` (merged
    away by another process meanwhile), ``"corrupt"`` (unreadable, truncated, bad
    checksum) or ``"other-dim"`` (a valid segment of another width)."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            keys = f.get_tensor("keys")
            vectors = f.get_tensor("vectors")
    except FileNotFoundError:
        return "gone"
    except Exception:  # noqa: BLE001 - any unreadable file is skipped, never fatal
        return "gone" if not path.exists() else "corrupt"
    valid = (
        meta.get("format") == SEGMENT_FORMAT
        and keys.dtype == np.uint8
        and keys.ndim == 2
        and keys.shape[1] == _KEY_BYTES
        and vectors.dtype == np.float32
        and vectors.ndim == 2
        and vectors.shape[0] == keys.shape[0]
        and meta.get("count") == str(keys.shape[0])
        and meta.get("crc32") == str(_crc(keys, vectors))
    )
    if not valid:
        return "corrupt"
    if vectors.shape[1] != dim:
        return "other-dim"
    return keys, vectors


@dataclass
class EncodeReport:
    """What :func:`encode_texts` did.

    Attributes:
        texts: texts asked for (with repeats).
        unique: distinct non-empty texts among them.
        empty: empty or whitespace-only texts (zero vectors, never encoded or cached).
        cached: distinct texts found in the cache.
        encoded: distinct texts run through the model.
        seconds: wall-clock time of the whole call.
        encode_seconds: of which spent in the model.
        texts_per_s: ``encoded / encode_seconds`` (model throughput; 0 when nothing was
            encoded).
    """

    texts: int
    unique: int
    empty: int
    cached: int
    encoded: int
    seconds: float
    encode_seconds: float
    texts_per_s: float

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


class EmbeddingCache:
    """Embeddings on disk, one folder per model fingerprint, keyed by text SHA-1.

    Args:
        root: cache folder; default :func:`default_cache_root`.
        compact_after: merge a model's segments once it has more than this many.
    """

    def __init__(
        self, root: str | os.PathLike[str] | None = None, compact_after: int = DEFAULT_COMPACT_AFTER
    ) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_root()
        self.compact_after = compact_after

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.root)!r})"

    def folder(self, fingerprint: str) -> Path:
        """Where one model's vectors live."""
        if not fingerprint or not all(c.isalnum() or c in "-_" for c in fingerprint):
            raise ValueError(f"fingerprint must be a non-empty alphanumeric string, got {fingerprint!r}")
        return self.root / fingerprint

    def segments(self, fingerprint: str) -> list[Path]:
        """Readable segment files of one model (temporary files excluded)."""
        folder = self.folder(fingerprint)
        if not folder.is_dir():
            return []
        return sorted(folder.glob("seg-*.safetensors"))

    def load(self, fingerprint: str, dim: int) -> tuple[dict[bytes, int], np.ndarray]:
        """Every cached vector of one model: ``(key -> row, vectors (n, dim))``.

        Unreadable or corrupt segments are skipped (their texts will be encoded again).
        """
        index: dict[bytes, int] = {}
        parts: list[np.ndarray] = []
        n = 0
        for _ in range(3):  # a segment merged away while listing: list again
            index, parts, n, vanished = {}, [], 0, False
            for path in self.segments(fingerprint):
                seg = _read_segment(path, dim)
                if isinstance(seg, str):
                    vanished = vanished or seg == "gone"
                    if seg != "gone":
                        warnings.warn(
                            f"skipping {seg} embedding cache segment {path} (its texts are encoded again)",
                            stacklevel=2,
                        )
                    continue
                keys, vectors = seg
                for j, k in enumerate(keys):
                    index.setdefault(k.tobytes(), n + j)
                parts.append(vectors)
                n += len(vectors)
            if not vanished:
                break
        vectors = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
        return index, vectors

    def get(self, fingerprint: str, texts: Sequence[str], dim: int) -> tuple[np.ndarray, np.ndarray]:
        """``(vectors (N, dim) float32, found (N,) bool)``; rows not found are zero."""
        index, cached = self.load(fingerprint, dim)
        out = np.zeros((len(texts), dim), dtype=np.float32)
        found = np.zeros(len(texts), dtype=bool)
        for i, t in enumerate(texts):
            row = index.get(text_key(t))
            if row is not None:
                out[i] = cached[row]
                found[i] = True
        return out, found

    def put(self, fingerprint: str, texts: Sequence[str], vectors: np.ndarray, name: str = "") -> Path | None:
        """Add ``vectors`` ``(N, d)`` for ``texts`` as one new segment (atomically).

        Returns the segment's path (``None`` when there was nothing to write).
        """
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(texts):
            raise ValueError(f"vectors must be (len(texts), d), got {vectors.shape} for {len(texts)} texts")
        if not len(texts):
            return None
        folder = self.folder(fingerprint)
        folder.mkdir(parents=True, exist_ok=True)
        info = folder / "model.json"
        if not info.exists():
            meta = {
                "name": name,
                "dim": int(vectors.shape[1]),
                "fingerprint": fingerprint,
                "created": time.time(),
            }
            _atomic_write(info, json.dumps(meta, indent=2).encode())
        keys = np.frombuffer(b"".join(text_key(t) for t in texts), dtype=np.uint8).reshape(-1, _KEY_BYTES)
        path = self._write_segment(folder, keys, vectors)
        if len(self.segments(fingerprint)) > self.compact_after:
            self.compact(fingerprint, int(vectors.shape[1]))
        return path

    def _write_segment(self, folder: Path, keys: np.ndarray, vectors: np.ndarray) -> Path:
        name = f"seg-{time.time_ns():020d}-{os.getpid()}-{uuid.uuid4().hex[:12]}.safetensors"
        path = folder / name
        _atomic_write(path, _encode_segment(keys, vectors))
        return path

    def compact(self, fingerprint: str, dim: int) -> None:
        """Merge every readable segment into one; delete corrupt segments, merged
        segments and stale temporary files. Safe while others read or write."""
        folder = self.folder(fingerprint)
        paths = self.segments(fingerprint)
        if len(paths) < 2:
            return
        merged_keys: list[np.ndarray] = []
        merged_vectors: list[np.ndarray] = []
        seen: set[bytes] = set()
        done: list[Path] = []
        corrupt: list[Path] = []
        for path in paths:
            seg = _read_segment(path, dim)
            if isinstance(seg, str):
                if seg == "corrupt":
                    corrupt.append(path)
                continue
            keys, vectors = seg
            fresh = [j for j, k in enumerate(keys) if k.tobytes() not in seen]
            seen.update(keys[j].tobytes() for j in fresh)
            merged_keys.append(keys[fresh])
            merged_vectors.append(vectors[fresh])
            done.append(path)
        if len(done) >= 2:
            self._write_segment(folder, np.concatenate(merged_keys), np.concatenate(merged_vectors))
            # only now, with every merged vector safe in the new segment, drop the old ones
            for path in done:
                path.unlink(missing_ok=True)
        for path in corrupt:
            path.unlink(missing_ok=True)
        now = time.time()
        for tmp in folder.glob(".tmp-*.part"):
            try:
                if now - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                    tmp.unlink(missing_ok=True)
            except FileNotFoundError:
                pass

    def clear(self, fingerprint: str | None = None) -> None:
        """Delete one model's vectors, or (``None``) every model's."""
        import shutil

        target = self.folder(fingerprint) if fingerprint is not None else self.root
        shutil.rmtree(target, ignore_errors=True)


def encode_texts(
    encoder: Encoder,
    texts: Sequence[str],
    cache: EmbeddingCache | str | os.PathLike[str] | bool = True,
    batch_size: int | None = None,
    progress: bool | None = None,
) -> tuple[np.ndarray, EncodeReport]:
    """Embeddings ``(N, d)`` float32 of ``texts``, encoding only what the cache lacks.

    Identical texts are encoded once. Empty (whitespace-only) texts get the zero vector
    and are neither encoded nor cached.

    Args:
        encoder: a :class:`~semrec.text.encoder.TextEncoder` (or anything with ``name``,
            ``dim``, ``fingerprint`` and ``encode``).
        texts: the texts, in the order wanted.
        cache: an :class:`EmbeddingCache`, a cache root folder, ``True`` for the default
            root or ``False`` for no cache.
        batch_size: texts per forward pass (default: the encoder's).
        progress: progress bar (default: the encoder's setting).

    Returns:
        ``(embeddings (N, d) float32, EncodeReport)``.
    """
    start = time.perf_counter()
    if cache is True:
        store: EmbeddingCache | None = EmbeddingCache()
    elif cache is False or cache is None:
        store = None
    elif isinstance(cache, EmbeddingCache):
        store = cache
    else:
        store = EmbeddingCache(cache)
    texts = [t if isinstance(t, str) else ("" if t is None else str(t)) for t in texts]
    dim = encoder.dim
    # distinct non-empty texts, first-appearance order; inverse maps each text to its row
    unique: dict[str, int] = {}
    inverse = np.full(len(texts), -1, dtype=np.int64)
    n_empty = 0
    for i, t in enumerate(texts):
        if not t.strip():
            n_empty += 1
            continue
        inverse[i] = unique.setdefault(t, len(unique))
    distinct = list(unique)
    if store is not None and distinct:
        fingerprint = encoder.fingerprint
        vectors, found = store.get(fingerprint, distinct, dim)  # (U, d), (U,)
    else:
        vectors, found = np.zeros((len(distinct), dim), np.float32), np.zeros(len(distinct), bool)
    missing = np.flatnonzero(~found)
    t0 = time.perf_counter()
    if len(missing):
        new = encoder.encode([distinct[i] for i in missing], batch_size=batch_size, progress=progress)
        vectors[missing] = new
    encode_seconds = time.perf_counter() - t0
    if store is not None and len(missing):
        store.put(encoder.fingerprint, [distinct[i] for i in missing], vectors[missing], name=encoder.name)
    out = np.zeros((len(texts), dim), dtype=np.float32)  # (N, d)
    has = inverse >= 0
    out[has] = vectors[inverse[has]]
    seconds = time.perf_counter() - start
    report = EncodeReport(
        texts=len(texts),
        unique=len(distinct),
        empty=n_empty,
        cached=int(found.sum()),
        encoded=int(len(missing)),
        seconds=seconds,
        encode_seconds=encode_seconds,
        texts_per_s=len(missing) / encode_seconds if len(missing) and encode_seconds > 0 else 0.0,
    )
    return out, report
