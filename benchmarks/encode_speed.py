"""Encoding speed: semrec's cached path against sentence-transformers called directly.

Encodes the 2,420 Amazon Office item texts with the packaged all-MiniLM-L6-v2:

(a) :func:`semrec.text.cache.encode_texts` with an empty temporary cache (so every
    text is encoded and written to the cache);
(b) ``SentenceTransformer.encode`` on the same texts, same batch size and
    ``max_seq_length``, normalised output;

``--runs`` repetitions of each, interleaved (a, b, b, a, a, b, ...) so that drift in
machine load hits both alike. Prints the median texts/s of each and their ratio, then
(c) the time of a second run of (a) on the now-filled cache.

    python benchmarks/encode_speed.py [--batch-size 64] [--runs 3] [--threads N] [--limit N]

Texts come from ``semrec.data.load.load_dataset("amazon-office")`` (under
``$SEMREC_DATA_HOME``, default ``../shared/data`` beside the repository) and
:func:`semrec.text.build.item_texts`.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from semrec.text.cache import EmbeddingCache, encode_texts  # noqa: E402
from semrec.text.encoder import TextEncoder, default_model_path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def amazon_office_texts(limit: int | None) -> list[str]:
    """The item texts of Amazon Office, in item id order."""
    os.environ.setdefault("SEMREC_DATA_HOME", str(REPO.parent / "shared" / "data"))
    try:
        from semrec.data.load import load_dataset
        from semrec.text.build import item_texts

        ds = load_dataset("amazon-office", download=False)
        ids = sorted(ds.items.index, key=int)
        texts = item_texts(ds, ids)
    except ImportError:  # readers not there: read the item file directly
        import html

        path = Path(os.environ["SEMREC_DATA_HOME"]) / "amazon-office" / "Office.item.json"
        items = json.loads(path.read_text())
        texts = []
        for key in sorted(items, key=int):
            it = items[key]
            parts = [it.get("title", "")]
            labelled = (("brand", "Brand"), ("categories", "Categories"))
            parts += [f"{label}: {it[c]}" for c, label in labelled if it.get(c)]
            parts += [it["description"]] if it.get("description") else []
            texts.append(html.unescape(". ".join(p for p in parts if p)))
    return texts[:limit] if limit else texts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N texts (quick check)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    texts = amazon_office_texts(args.limit)
    n = len(texts)
    ours = TextEncoder(device="cpu", batch_size=args.batch_size, progress=False)
    from sentence_transformers import SentenceTransformer

    direct = SentenceTransformer(str(default_model_path()), device="cpu", local_files_only=True)
    direct.max_seq_length = ours.max_seq_length

    # warm-up: first-call costs (lazy imports, allocator) are not what is measured
    ours.encode(texts[:8])
    direct.encode(texts[:8], batch_size=args.batch_size, normalize_embeddings=True, show_progress_bar=False)

    times: dict[str, list[float]] = {"semrec": [], "direct": []}
    tmp = tempfile.TemporaryDirectory(prefix="semrec-bench-")
    last_cache: EmbeddingCache | None = None
    emb_ours = emb_direct = None
    for r in range(args.runs):
        order = ("semrec", "direct") if r % 2 == 0 else ("direct", "semrec")
        for who in order:
            if who == "semrec":
                last_cache = EmbeddingCache(Path(tmp.name) / f"run{r}")  # empty
                t = time.perf_counter()
                emb_ours, report = encode_texts(ours, texts, cache=last_cache, batch_size=args.batch_size)
                times[who].append(time.perf_counter() - t)
                if report.encoded != report.unique:
                    raise RuntimeError("the cache was not empty")
            else:
                t = time.perf_counter()
                emb_direct = direct.encode(
                    texts, batch_size=args.batch_size, normalize_embeddings=True, show_progress_bar=False
                )
                times[who].append(time.perf_counter() - t)
    t = time.perf_counter()
    emb_cached, cached_report = encode_texts(ours, texts, cache=last_cache, batch_size=args.batch_size)
    cached_s = time.perf_counter() - t

    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "texts": n,
        "unique_texts": report.unique,
        "batch_size": args.batch_size,
        "max_seq_length": ours.max_seq_length,
        "torch_threads": torch.get_num_threads(),
        "runs": args.runs,
        "semrec_seconds": times["semrec"],
        "direct_seconds": times["direct"],
        "semrec_texts_per_s": n / med["semrec"],
        "direct_texts_per_s": n / med["direct"],
        "ratio_semrec_over_direct": med["direct"] / med["semrec"],
        "cached_run_seconds": cached_s,
        "cached_run_encoded": cached_report.encoded,
        "max_abs_diff_vs_direct": float(np.abs(emb_ours - emb_direct).max()),
        "cached_equals_encoded": bool(np.array_equal(emb_cached, emb_ours)),
    }
    tmp.cleanup()
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{n} Amazon Office item texts ({result['unique_texts']} distinct), batch {args.batch_size}, "
        f"max_seq_length {result['max_seq_length']}, {result['torch_threads']} torch threads, "
        f"{args.runs} runs each"
    )
    print(f"(a) semrec encode_texts, empty cache: median {med['semrec']:.2f} s = "
          f"{result['semrec_texts_per_s']:.1f} texts/s  (runs: {', '.join(f'{x:.2f}' for x in times['semrec'])})")
    print(f"(b) SentenceTransformer.encode:      median {med['direct']:.2f} s = "
          f"{result['direct_texts_per_s']:.1f} texts/s  (runs: {', '.join(f'{x:.2f}' for x in times['direct'])})")
    print(f"    ratio semrec/direct throughput: {result['ratio_semrec_over_direct']:.3f}  "
          f"(max |difference| of vectors {result['max_abs_diff_vs_direct']:.2e})")
    print(f"(c) second run on the filled cache:  {cached_s:.3f} s, encoded {cached_report.encoded}, "
          f"identical vectors: {result['cached_equals_encoded']}")


if __name__ == "__main__":
    main()
