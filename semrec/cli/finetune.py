"""``semrec finetune``: fine-tune the text encoder on ratings or towards a graph run."""
from __future__ import annotations

import json

import click


@click.command()
@click.option("--data", "data_name", required=True, help="Dataset name (ml-100k, amazon-office, ...) or folder.")
@click.option("--objective", required=True, metavar="rating|align",
              help="rating: regress ratings from (user profile, item) texts; "
                   "align: pull item text vectors towards a graph run's item vectors.")
@click.option("--split", "split_spec", default=None,
              help="Split spec (default: given for rating, the graph run's own split for align).")
@click.option("--encoder", default=None, metavar="PATH",
              help="Local sentence-transformers or Hugging Face folder to start from "
                   "(default: the packaged all-MiniLM-L6-v2).")
@click.option("--graph", default=None, type=click.Path(), metavar="RUN_DIR",
              help="A trained graph run on the same dataset and split. align: the run whose item "
                   "vectors the text is pulled towards; rating: a run with a rating head "
                   "(--set task=rating) to blend with the fine-tuned text model.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a fine-tuning setting, e.g. --set max_steps=300 --set lora_r=16 "
                   "--set baseline=true (see semrec.finetune.trainer.FinetuneConfig).")
@click.option("--out", required=True, type=click.Path(file_okay=False), metavar="ENCODER_DIR",
              help="Folder to write the fine-tuned encoder into.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
def finetune(data_name, objective, split_spec, encoder, graph, sets, out, quiet, as_json) -> None:
    """Fine-tune the language model on the recommendation signal (LoRA by default).

    The result is a sentence-transformers folder with a new fingerprint: pass it as
    `semrec encode DATASET --model ENCODER_DIR` or `semrec train --set text.encoder=ENCODER_DIR`.
    """
    from semrec.finetune.trainer import build_finetune_config
    from semrec.finetune.trainer import finetune as run_finetune
    from semrec.train.threads import use_threads

    config = build_finetune_config(list(sets) + (["progress=false"] if quiet else []))
    use_threads()

    def note(text: str) -> None:
        click.echo(f"note: {text}", err=True)

    summary = run_finetune(data_name, objective, out, config=config, split=split_spec, encoder=encoder,
                           graph=graph, on_note=note)
    if as_json:
        brief = {k: v for k, v in summary.items() if k != "history"}
        click.echo(json.dumps(brief, indent=2))
        return
    m = summary["metrics"]
    click.echo(f"wrote {summary['out']}  ({summary['method']}, {summary['trainable_params']:,} of "
               f"{summary['total_params']:,} encoder parameters trained; {summary['steps']} steps, "
               f"{summary['s_per_step']:.2f}s/step, best at step {summary['best_step']})")
    click.echo(f"  fingerprint {summary['fingerprint'][:16]} (base {summary['base_fingerprint'][:16]})")
    if objective == "rating":
        click.echo(f"  valid rmse  {m['valid']['rmse']:.4f}  (before fine-tuning {m['valid_rmse_before']:.4f}"
                   f"{', sampled' if summary['config']['max_valid'] else ''})")
        click.echo(f"  valid mae   {m['valid']['mae']:.4f}")
        click.echo(f"  test rmse   {m['test']['rmse']:.4f}")
        click.echo(f"  test mae    {m['test']['mae']:.4f}")
        base = summary.get("baseline_frozen")
        if base:
            click.echo(_rmse_line("frozen encoder + head, same steps", base))
            click.echo(_rmse_line(f"frozen encoder + head, converged ({base['converged']['steps']} steps)",
                                  base["converged"]))
        ens = m.get("ensemble")
        if ens:
            w = ens["weights"]
            click.echo(_rmse_line("graph run alone", ens["graph"]))
            click.echo(_rmse_line(f"blend {w['bias']:+.3f} {w['text']:+.3f}*text {w['graph']:+.3f}*graph "
                                  "(weights fitted on valid)", ens))
            if base and "ensemble" in base["converged"]:
                click.echo(_rmse_line("blend with the converged frozen head instead", base["converged"]["ensemble"]))
    else:
        click.echo(f"  valid InfoNCE   {m['valid_loss_before']:.4f} -> {m['valid_loss']:.4f}")
        click.echo(f"  knn overlap@10  {m['knn_overlap@10']['before']:.4f} -> {m['knn_overlap@10']['after']:.4f}")
        cold = m.get("cold")
        if cold:
            click.echo(f"  cold items (semantic model, {cold['n_items']} held-out items):")
            for key in sorted(cold["before"]):
                click.echo(f"    {key:<13}{cold['before'][key]:.4f} -> {cold['after'][key]:.4f}")
    click.echo(f"next: semrec train --data {data_name} --model semantic --set text.encoder={summary['out']} ...")


def _rmse_line(label: str, result: dict) -> str:
    """``  label: valid rmse X, test rmse Y`` of a result with ``valid`` and ``test`` metrics."""
    return f"  {label}: valid rmse {result['valid']['rmse']:.4f}, test rmse {result['test']['rmse']:.4f}"
