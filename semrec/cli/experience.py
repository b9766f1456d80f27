"""``semrec tune`` and ``semrec runs list|plot``: search hyper-parameters, compare runs."""
from __future__ import annotations

import json
import os
from pathlib import Path

import click


def _json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False, default=str))


def _note(text: str) -> None:
    click.echo(f"note: {text}", err=True)


def _short(path: str) -> str:
    """``path`` relative to the current folder when it lies under it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:  # another drive (Windows)
        return path
    return path if rel.startswith("..") else rel


# ----------------------------------------------------------------------------- tune


@click.command()
@click.option("--data", "data_name", required=True, help="Dataset name (ml-100k, ...) or folder.")
@click.option("--model", "model_name", required=True, help="Model name (see `semrec models`).")
@click.option("--trials", "n_trials", required=True, type=click.IntRange(min=1), help="How many trials.")
@click.option("--split", "split_spec", default=None,
              help="Split spec (default: given); trials are scored on its validation part, never its test.")
@click.option("--timeout", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Stop starting trials after this many seconds.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML file with the base settings.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Fix a field for every trial (not searched), e.g. --set epochs=20.")
@click.option("--seed", default=0, show_default=True, help="Seed of the sampler.")
@click.option("--out", required=True, type=click.Path(dir_okay=False),
              help="BEST.toml to write; BEST.trials.json and BEST.trials.png go beside it.")
@click.option("--quiet", is_flag=True, help="No line per trial.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
def tune(data_name, model_name, n_trials, split_spec, timeout, config_file, sets, seed, out, quiet,
         as_json) -> None:
    """Search MODEL's hyper-parameters with Optuna on DATA's validation part; write the best
    config as a TOML that `semrec train --config` accepts, and a plot of the trials."""
    from semrec.pipeline import build_config
    from semrec.train.threads import use_threads
    from semrec.tune.study import tune as run_tune

    # the base settings decide the threads (the run's train.threads, else the load rule)
    use_threads(build_config(model_name, config_file, list(sets), split_spec).train.threads)

    def on_trial(t: dict) -> None:
        if quiet or as_json:
            return
        value = "-" if t["value"] is None else f"{t['value']:.4f}"
        best = "-" if t.get("best_value") is None else f"{t['best_value']:.4f}"
        secs = "" if t["seconds"] is None else f", {t['seconds']:.1f}s"
        params = " ".join(f"{k.partition('.')[2]}={_fmt(v)}" for k, v in t["params"].items())
        state = "" if t["state"] == "complete" else f" [{t['state']}" + (
            f" at epoch {t['last_step']}]" if t["state"] == "pruned" and t["last_step"] else "]")
        click.echo(f"trial {t['number'] + 1}/{t['n_trials']}: {t['metric']} {value}{state} "
                   f"(best {best}{secs})  {params}", err=True)

    result = run_tune(data_name, model_name, n_trials, out, split=split_spec, config_file=config_file,
                      sets=list(sets), timeout=timeout, seed=seed, on_trial=on_trial, on_note=_note)
    summary = {
        "out": str(result.out),
        "trials_json": str(result.trials_json),
        "plot": None if result.plot is None else str(result.plot),
        "metric": result.metric,
        "direction": result.direction,
        "best_value": result.best_value,
        "best_params": result.best_params,
        "n_trials": result.n_trials,
        "complete": result.n_complete,
        "pruned": result.n_pruned,
        "failed": result.n_failed,
        "seconds": result.seconds,
    }
    if as_json:
        _json(summary)
        return
    click.echo(f"best validation {result.metric} {result.best_value:.4f} after {result.n_trials} trials "
               f"({result.n_pruned} pruned, {result.n_failed} failed, {result.seconds:.1f}s)")
    for key, value in result.best_params.items():
        click.echo(f"  {key:<22}{_fmt(value)}")
    click.echo(f"wrote {result.out}, {result.trials_json.name} and {result.plot.name}")
    click.echo(f"next: semrec train --data {data_name} --config {result.out} --out RUN_DIR")


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


# ----------------------------------------------------------------------------- runs


@click.group()
def runs() -> None:
    """Compare run folders."""


def _rows(dirs: tuple[str, ...]) -> list[dict]:
    from semrec.artifacts.compare import find_runs, run_row

    folders = find_runs(dirs or (".",))
    return [run_row(f) for f in folders]


@runs.command("list")
@click.argument("dirs", nargs=-1, type=click.Path())
@click.option("--metric", "metrics", multiple=True, metavar="NAME@K",
              help="Metric columns (default: recall@20 and ndcg@20); repeat for more.")
@click.option("--sort", "sort_by", default=None, metavar="COLUMN",
              help="Sort by a metric (best first), fit_s, model or run (default: run).")
@click.option("--json", "as_json", is_flag=True, help="Print every run's summary as JSON.")
def runs_list(dirs: tuple[str, ...], metrics: tuple[str, ...], sort_by: str | None, as_json: bool) -> None:
    """Run folders side by side: model, dataset, split, test metrics, fit seconds, epochs.
    DIRS are run folders or folders holding runs (default: the current folder)."""
    from semrec.artifacts.compare import METRICS, table

    rows = _rows(dirs)
    for r in rows:
        r["run"] = _short(r["run"])
    if sort_by:
        if rows and not any(sort_by in r for r in rows):
            raise click.BadParameter(f"no run has a column '{sort_by}'", param_hint="--sort")
        lower_first = sort_by in ("rmse", "mae", "fit_s", "eval_s", "model", "run", "dataset", "split")
        present = [r for r in rows if r.get(sort_by) is not None]
        present.sort(key=lambda r: r[sort_by], reverse=not lower_first)
        rows = present + [r for r in rows if r.get(sort_by) is None]
    if as_json:
        _json({"runs": rows})
        return
    if not rows:
        click.echo(f"no run folders under {', '.join(dirs) or '.'}")
        return
    click.echo(table(rows, metrics or METRICS))


#: What ``runs plot --out`` can write (matplotlib infers the format from the suffix).
IMAGE_SUFFIXES = (".png", ".svg", ".pdf", ".jpg", ".jpeg")


@runs.command("plot")
@click.argument("dirs", nargs=-1, type=click.Path())
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="PNG to write.")
@click.option("--metric", default="ndcg@20", show_default=True, help="Quality axis (a test metric).")
def runs_plot(dirs: tuple[str, ...], out: str, metric: str) -> None:
    """Quality versus training time across run folders (one point per run)."""
    from semrec.errors import SemrecError
    from semrec.evaluate.plots import quality_vs_time

    if Path(out).suffix.lower() not in IMAGE_SUFFIXES:
        raise click.BadParameter(f"expected an image file name ending in {', '.join(IMAGE_SUFFIXES)}, "
                                 f"got {out!r}", param_hint="--out")
    rows = _rows(dirs)
    if not rows:
        raise SemrecError(f"no run folders under {', '.join(dirs) or '.'}")
    if not any(metric in r for r in rows):
        raise SemrecError(f"--metric: no run has test metric '{metric}'; e.g. ndcg@20, recall@20")
    for r in rows:
        r["label"] = f"{r['model']} ({Path(r['run']).name})"
    path = quality_vs_time(rows, out, metric)
    click.echo(f"wrote {path} ({sum(metric in r for r in rows)} runs)")
