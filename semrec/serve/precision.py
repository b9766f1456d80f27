"""Half-precision serving embeddings: float16 / bfloat16 copies of a run's
``embeddings.safetensors``.

64-d float32 embeddings take 256 bytes a node; float16 or bfloat16 halve that (128 bytes).
Serving computes in float32 (FAISS and the CPU matrix products want float32): the stored
half-precision rows are upcast once at load time, so only storage and transfer shrink;
the scores differ from float32 by the rounding of the stored values (float16: 11
significant bits, relative error ≤ 2⁻¹¹; bfloat16: 8 bits, ≤ 2⁻⁸).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from semrec.errors import SemrecError

#: Names accepted for ``dtype``.
DTYPES = {
    "float32": torch.float32, "fp32": torch.float32,
    "float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
    "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
}

EMBEDDINGS = "embeddings.safetensors"


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        if dtype not in DTYPES.values():
            raise ValueError(f"dtype: expected float32, float16 or bfloat16, got {dtype}")
        return dtype
    try:
        return DTYPES[str(dtype).lower()]
    except KeyError:
        raise ValueError(f"dtype: expected one of {sorted(DTYPES)}, got {dtype!r}") from None


def cast_embeddings(run_dir: str | Path, dtype: str | torch.dtype = "float16",
                    out: str | Path | None = None) -> Path:
    """Write the run's ``user_emb`` / ``item_emb`` in ``dtype``.

    Args:
        run_dir: a run folder with ``embeddings.safetensors``.
        dtype: ``float16`` (``fp16``), ``bfloat16`` (``bf16``) or ``float32``.
        out: where to write; default ``run_dir/embeddings.safetensors`` itself (the
            float32 original is then replaced: copy the run first to keep it).

    Returns:
        The written path. Every floating tensor of the file is cast; others are kept.
    """
    target = resolve_dtype(dtype)
    src = Path(run_dir) / EMBEDDINGS
    if not src.is_file():
        raise SemrecError(f"{src}: no embeddings in this run (not an embedding model?)")
    tensors = load_file(str(src))
    cast = {k: (v.to(target) if v.is_floating_point() else v).contiguous() for k, v in tensors.items()}
    dest = Path(out) if out is not None else src
    tmp = dest.with_name(f".{dest.name}.partial")
    save_file(cast, str(tmp))
    os.replace(tmp, dest)  # never a half-written embeddings file, also when replacing in place
    return dest


def load_embeddings_float32(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of an embeddings file, floating ones upcast to float32 (the hook a
    loader needs so that a half-precision file serves through float32 code)."""
    return {k: (v.float() if v.is_floating_point() else v) for k, v in load_file(str(path)).items()}
