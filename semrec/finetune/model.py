"""A sentence-transformers encoder made trainable: LoRA adapters (``peft``) or every
weight, a differentiable ``forward(texts)``, and a ``save`` that merges the adapters and
writes a plain sentence-transformers folder."""
from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from semrec.errors import ConfigError
from semrec.text.encoder import EncoderError, _check_folder, _offline, _quiet_loading, default_model_path

#: Linear layers of a BERT-style encoder that get LoRA adapters: attention projections
#: and the feed-forward layers of the adapted transformer blocks (never the unused pooler).
LORA_LINEARS = r"(query|key|value|dense|q_lin|k_lin|v_lin|out_lin|lin1|lin2)"


def lora_targets(n_layers: int, top: int | None) -> str:
    """Regex (for ``peft``'s ``target_modules``) of the linear layers in the top ``top``
    of ``n_layers`` transformer blocks (all blocks when ``top`` is ``None``)."""
    first = 0 if top is None else max(0, n_layers - top)
    blocks = "|".join(str(b) for b in range(first, n_layers))
    return rf".*layers?\.({blocks})\..*\.{LORA_LINEARS}$"


def base_path(encoder: str | os.PathLike[str] | None) -> Path:
    """The model folder to start from: ``encoder`` or the packaged all-MiniLM-L6-v2."""
    if encoder is None:
        return default_model_path()
    given = str(encoder)
    path = Path(os.path.expanduser(given))
    _check_folder(path, given)  # raises EncoderError with a message a user can act on
    return path.resolve()


class TrainableEncoder(torch.nn.Module):
    """Texts -> L2-normalised vectors ``(B, d)``, with gradients.

    Args:
        path: a local sentence-transformers or Hugging Face model folder (a plain
            Hugging Face folder gets mean pooling).
        lora_r, lora_alpha, lora_dropout: LoRA rank, scale and dropout; ``lora_r = 0``
            or ``full=True`` trains every weight instead.
        lora_layers: adapt only the top this many transformer blocks (``None``: all).
            The blocks below are frozen, so backpropagation stops at the lowest adapted
            block: fewer layers make a step cheaper.
        full: full fine-tuning (no adapters).
        max_seq_length: tokens kept per text while training and encoding here; the saved
            folder keeps the base model's own limit.
        device: where the model runs.
    """

    def __init__(
        self,
        path: Path,
        *,
        lora_r: int = 8,
        lora_alpha: float = 16.0,
        lora_dropout: float = 0.1,
        lora_layers: int | None = None,
        full: bool = False,
        max_seq_length: int | None = 128,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        _offline()
        _quiet_loading()
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError:
            raise EncoderError("fine-tuning needs sentence-transformers: pip install 'semrec[text]'") from None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.st = SentenceTransformer(str(path), device=str(device), local_files_only=True,
                                          trust_remote_code=False)
        self.path = path
        self.device = torch.device(device)
        self.base_max_seq_length = self.st.max_seq_length
        if max_seq_length is not None:
            self.st.max_seq_length = max_seq_length
        self.full = full or lora_r == 0
        transformer = self.st[0]
        if self.full:
            for p in self.st.parameters():
                p.requires_grad_(True)
        else:
            try:
                from peft import LoraConfig, get_peft_model
            except ImportError:
                raise ConfigError(
                    "LoRA fine-tuning needs peft: pip install 'semrec[text]' (or pip install peft), "
                    "or pass --set full=true"
                ) from None
            cfg = transformer.model.config
            n_layers = int(getattr(cfg, "num_hidden_layers", 0) or getattr(cfg, "n_layers", 0))
            config = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                                target_modules=lora_targets(n_layers, lora_layers))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                transformer.model = get_peft_model(transformer.model, config)
        dim_fn = getattr(self.st, "get_embedding_dimension", None) or self.st.get_sentence_embedding_dimension
        self.dim = int(dim_fn())
        self._tokenize = getattr(self.st, "preprocess", None) or self.st.tokenize

    # -- parameters -------------------------------------------------------------------

    def trainable_parameters(self) -> list[torch.nn.Parameter]:
        return [p for p in self.st.parameters() if p.requires_grad]

    def count_parameters(self) -> tuple[int, int]:
        """``(trainable, total)`` parameter counts of the encoder."""
        total = sum(p.numel() for p in self.st.parameters())
        return sum(p.numel() for p in self.trainable_parameters()), total

    def trainable_names(self) -> list[str]:
        return [n for n, p in self.st.named_parameters() if p.requires_grad]

    # -- forward ----------------------------------------------------------------------

    def forward(self, texts: Sequence[str]) -> torch.Tensor:
        """Unit vectors ``(B, d)`` of ``texts`` (differentiable); empty texts give zero rows."""
        texts = list(texts)
        out = torch.zeros(len(texts), self.dim, device=self.device)  # (B, d)
        keep = [i for i, t in enumerate(texts) if t.strip()]
        if not keep:
            return out
        features = self._tokenize([texts[i] for i in keep])
        features = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v for k, v in features.items()}
        emb = self.st(features)["sentence_embedding"]  # (B', d)
        emb = F.normalize(emb.float(), p=2.0, dim=1)
        return out.index_put((torch.as_tensor(keep, device=self.device),), emb)

    @torch.no_grad()
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
        """Unit vectors ``(N, d)`` float32 in eval mode (no dropout), texts batched by length."""
        was_training = self.training
        self.eval()
        texts = list(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        for b in range(0, len(order), batch_size):
            rows = order[b : b + batch_size]
            out[rows] = self.forward([texts[i] for i in rows]).cpu().numpy()
        self.train(was_training)
        return out

    # -- save -------------------------------------------------------------------------

    def save(self, out: str | os.PathLike[str]) -> Path:
        """Merge the adapters into the weights and write a sentence-transformers folder.

        After this call the encoder holds the merged model (no adapters).
        """
        out = Path(out)
        transformer = self.st[0]
        if not self.full and hasattr(transformer.model, "merge_and_unload"):
            transformer.model = transformer.model.merge_and_unload()
        self.st.max_seq_length = self.base_max_seq_length
        out.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
            self.st.save(str(out))
        return out
