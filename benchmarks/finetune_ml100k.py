"""Fine-tuning the text encoder: what a few hundred CPU steps cost and what they buy.

Part ``rating`` — ml-100k ``given:u1``: MiniLM + LoRA fine-tuned on (user profile, item)
texts with a regression head, against the same head on the frozen encoder; RMSE/MAE on
u1.test (published: GC-MC 0.905–0.910, GLocal-K 0.8889).

Part ``align`` — amazon-office ``cold-items:0.2``: a LightGCN run is trained on the split,
the encoder is aligned with its item embeddings, and the text-only ``semantic`` model's
cold-item Recall@20 is compared with the base and the aligned encoder.

    SEMREC_DATA_HOME=../shared/data python benchmarks/finetune_ml100k.py --part rating --steps 100
    SEMREC_DATA_HOME=../shared/data python benchmarks/finetune_ml100k.py --part rating --steps 300 \
        --graph runs/tune/ml-100k-semgraph-rating      # + the blend with semgraph's rating head
    SEMREC_DATA_HOME=../shared/data python benchmarks/finetune_ml100k.py --part align --steps 60

Every setting of ``semrec finetune`` can be passed with ``--set key=value``.
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from semrec.finetune.trainer import build_finetune_config, finetune  # noqa: E402


def _note(text: str) -> None:
    print(f"note: {text}", flush=True)


def rating(args: argparse.Namespace, out: Path) -> dict:
    sets = [f"max_steps={args.steps}", f"batch_size={args.batch_size}", f"max_seq_length={args.max_seq_length}",
            f"eval_every={max(1, args.steps // 2)}", "max_valid=300", "profile_items=5", "baseline=true",
            f"progress={'false' if args.quiet else 'true'}", *args.set]
    config = build_finetune_config(sets)
    s = finetune("ml-100k", "rating", out / "rating", config=config, split="given:u1", graph=args.graph,
                 on_note=_note)
    m, b = s["metrics"], s["baseline_frozen"]
    print(f"\nml-100k given:u1 rating ({s['steps']} steps x {config.batch_size * config.grad_accum} pairs, "
          f"{s['method']} {s['trainable_params']:,}/{s['total_params']:,} params, max_seq_length "
          f"{config.max_seq_length}, lora_layers {config.lora_layers})")
    print(f"{'':<30}{'valid rmse':>11}{'test rmse':>11}{'test mae':>10}")
    print(f"{'frozen MiniLM + head, same':<30}{b['valid']['rmse']:>11.4f}{b['test']['rmse']:>11.4f}{b['test']['mae']:>10.4f}")
    c = b["converged"]
    print(f"{'frozen MiniLM + head, converged':<30}{c['valid']['rmse']:>11.4f}{c['test']['rmse']:>11.4f}"
          f"{c['test']['mae']:>10.4f}")
    print(f"{'MiniLM + LoRA + head':<30}{m['valid']['rmse']:>11.4f}{m['test']['rmse']:>11.4f}{m['test']['mae']:>10.4f}")
    ens = m.get("ensemble")
    if ens:
        g = ens["graph"]
        print(f"{'semgraph rating head (--graph)':<30}{g['valid']['rmse']:>11.4f}{g['test']['rmse']:>11.4f}"
              f"{g['test']['mae']:>10.4f}")
        print(f"{'blend: LoRA text + semgraph':<30}{ens['valid']['rmse']:>11.4f}{ens['test']['rmse']:>11.4f}"
              f"{ens['test']['mae']:>10.4f}   weights {ens['weights']}")
        ce = c.get("ensemble")
        if ce:
            print(f"{'blend: frozen conv. + semgraph':<30}{ce['valid']['rmse']:>11.4f}{ce['test']['rmse']:>11.4f}"
                  f"{ce['test']['mae']:>10.4f}   weights {ce['weights']}")
    print(f"fine-tuning: {s['s_per_step']:.2f} s/step, {s['train_s']:.0f} s training, {s['fit_s']:.0f} s in all "
          f"(frozen baseline: {b['encode_s']:.0f} s encoding + {b['train_s']:.1f} s head)")
    return s


def align(args: argparse.Namespace, out: Path) -> dict:
    from semrec.pipeline import build_config, train_and_save

    graph = out / "lightgcn"
    t0 = time.perf_counter()
    cfg = build_config("lightgcn", sets=[f"epochs={args.graph_epochs}", "progress=false", "dim=64"],
                       split="cold-items:0.2")
    run = train_and_save("amazon-office", cfg, graph, on_note=_note, overwrite=True)
    print(f"lightgcn on amazon-office cold-items:0.2: {time.perf_counter() - t0:.0f} s, "
          f"test recall@20 {run.metrics['test']['recall@20']:.4f}")
    sets = [f"max_steps={args.steps}", f"batch_size={args.batch_size}", f"max_seq_length={args.max_seq_length}",
            f"eval_every={max(1, args.steps // 2)}", "epochs=100",
            f"progress={'false' if args.quiet else 'true'}", *args.set]
    config = build_finetune_config(sets)
    s = finetune("amazon-office", "align", out / "aligned", config=config, graph=graph, on_note=_note)
    m = s["metrics"]
    print(f"\namazon-office cold-items:0.2 align ({s['steps']} steps x {config.batch_size} items, "
          f"{m['n_align_items']} items aligned, max_seq_length {config.max_seq_length})")
    print(f"{'':<34}{'before':>10}{'after':>10}")
    print(f"{'valid InfoNCE (+relational)':<34}{m['valid_loss_before']:>10.4f}{m['valid_loss']:>10.4f}")
    print(f"{'text~graph similarity corr.':<34}{m['similarity_correlation']['before']:>10.4f}"
          f"{m['similarity_correlation']['after']:>10.4f}")
    print(f"{'knn overlap@10':<34}{m['knn_overlap@10']['before']:>10.4f}{m['knn_overlap@10']['after']:>10.4f}")
    cold = m.get("cold", {})
    for key in ("recall@20", "ndcg@20"):
        if key in cold.get("before", {}):
            print(f"{'cold ' + key + ' (semantic model)':<34}{cold['before'][key]:>10.4f}{cold['after'][key]:>10.4f}")
    print(f"fine-tuning: {s['s_per_step']:.2f} s/step, {s['train_s']:.0f} s training, {s['fit_s']:.0f} s in all")
    return s


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=["rating", "align", "both"], default="both")
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--max-seq-length", type=int, default=64)
    p.add_argument("--graph-epochs", type=int, default=30)
    p.add_argument("--graph", default=None, metavar="RUN_DIR",
                   help="rating: a semgraph run trained with task=rating (tune_ml100k.py --preset "
                        "semgraph-rating) to blend with the fine-tuned text model.")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", default=None, help="Folder for the encoders (default: a temporary folder).")
    p.add_argument("--json", default=None, help="Write the summaries here.")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="semrec-finetune-bench-"))
    results = {}
    if args.part in ("rating", "both"):
        results["rating"] = rating(args, out)
    if args.part in ("align", "both"):
        results["align"] = align(args, out)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
