"""The ``semrec`` command line. Only this module reads argv.

Mistakes in input (a missing file, a bad option, an unknown user) print one
``error: ...`` line and exit with status 2, never a traceback; so does a path that cannot
be read or written (an ``OSError``: its reason and file name).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from semrec.errors import SemrecError


def _json(obj) -> None:
    click.echo(json.dumps(obj, indent=2, ensure_ascii=False))


def _note(text: str) -> None:
    click.echo(f"note: {text}", err=True)


def _use_threads(setting: int | None = None) -> None:
    """Every command that computes starts here: the thread rule of :mod:`semrec.train.threads`."""
    from semrec.train.threads import use_threads

    use_threads(setting)


def _parse_ks(text: str) -> tuple[int, ...]:
    try:
        ks = tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers like 10,20, got {text!r}") from None
    if not ks or min(ks) < 1:
        raise click.BadParameter("every K must be at least 1")
    return ks


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="semrec")
def cli() -> None:
    """semrec: recommendations from what things mean and who did what."""


# ----------------------------------------------------------------------------- data


@cli.group()
def data() -> None:
    """Inspect datasets."""


@data.command("info")
@click.argument("dataset")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def data_info(dataset: str, as_json: bool) -> None:
    """Sizes, density, rating scale and text columns of DATASET (a name or a folder)."""
    from semrec.data.info import describe
    from semrec.data.load import load_dataset

    ds = load_dataset(dataset)
    info = describe(ds)
    if as_json:
        _json(info)
        return
    for note in ds.notes:
        _note(note)
    click.echo(f"dataset       {info['name']}")
    click.echo(f"users         {info['n_users']:,}")
    click.echo(f"items         {info['n_items']:,}")
    click.echo(f"interactions  {info['n_interactions']:,}")
    click.echo(f"density       {info['density']:.4%}")
    scale = info.get("rating_scale")
    click.echo(f"ratings       {'none (implicit)' if not scale else f'{scale[0]:g} to {scale[1]:g}'}")
    for kind, cols in (info.get("text_columns") or {}).items():
        click.echo(f"{kind + ' text':<14}{', '.join(cols) if cols else '-'}")
    if info.get("given_splits"):
        click.echo(f"given splits  {', '.join(info['given_splits'])}")


# ----------------------------------------------------------------------------- train


@cli.command()
@click.option("--data", "data_name", required=True, help="Dataset name (ml-100k, gowalla, ...) or folder.")
@click.option("--model", "model_name", default=None, help="Model name (see `semrec models`).")
@click.option("--split", "split_spec", default=None, help="given[:NAME], random:0.8/0.1/0.1, temporal:..., "
              "leave-one-out, cold-items:0.2 (default: given).")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML file with [data], [model], [train] sections.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override any config field, e.g. --set epochs=20 --set dim=64.")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Run folder to write.")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing run at --out (a run with an event store is moved aside, never deleted).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print the test metrics as JSON.")
def train(data_name, model_name, split_spec, config_file, sets, out, overwrite, quiet, as_json) -> None:
    """Train a model, evaluate it on the test part and write a run folder.

    Data-parallel on several processes or machines: ``torchrun --nproc-per-node N -m semrec
    train ...`` (gloo on CPU, NCCL on GPU); process 0 writes the run and prints."""
    from semrec.pipeline import COLD_KEYS, build_config, train_and_save

    if not out.strip():
        raise click.BadParameter("expected the name of the run folder to write", param_hint="--out")
    sets = list(sets) + (["progress=false"] if quiet else [])
    config = build_config(model_name, config_file, sets, split_spec)
    _use_threads(config.train.threads)
    run = train_and_save(data_name, config, out, on_note=_note, overwrite=overwrite)
    if run is None:  # a torchrun process other than 0: it trained its shard, process 0 reports
        return
    summary = {
        "run": str(run.path),
        "model": config.model,
        "split": config.data.split,
        "n_test_users": run.metrics["n_test_users"],
        "metrics": run.metrics["test"],
        **{key: run.metrics[key] for key in COLD_KEYS if key in run.metrics},
        "fit_s": run.metrics["fit_s"],
    }
    if as_json:
        _json(summary)
        return
    click.echo(f"wrote {run.path}  ({config.model}, split {config.data.split}, fit {run.metrics['fit_s']:.1f}s)")
    _print_metrics(run.metrics["test"])
    _print_cold(summary)


def _print_cold(result: dict) -> None:
    cold = result.get("cold")
    if cold:
        what = (f"{cold['n_items']} held-out items, ranked among themselves" if cold["entity"] == "items"
                else f"{cold['n_users']} held-out users, each scored from their first {cold['support']} items")
        click.echo(f"cold start: {what}")
        _print_metrics({k: v for k, v in cold.items() if "@" in k})
    sparse = result.get("sparse_users")
    if sparse:
        click.echo(f"users with at most {sparse['max_train']} training interactions ({sparse['n_users']}):")
        _print_metrics({k: v for k, v in sparse.items() if "@" in k})


def _print_metrics(metrics: dict) -> None:
    keys = sorted(metrics, key=lambda k: (k.split("@")[0], int(k.split("@")[1]) if "@" in k else 0))
    width = max([14, *(len(k) + 2 for k in keys)])
    for key in keys:
        click.echo(f"  {key:<{width}}{metrics[key]:.4f}")


# ----------------------------------------------------------------------------- evaluate


def _rerank_options(fn):
    """``--diversity``, ``--novelty`` and ``--pool``: re-ranking, off by default."""
    fn = click.option("--pool", type=click.IntRange(min=1), default=None,
                      help="Re-rank each list from this many best items (default: max(100, 2K)).")(fn)
    fn = click.option("--novelty", type=click.FloatRange(0, 10), default=0.0, show_default=True,
                      help="Re-rank against popularity: inverse-propensity strength β, the relevance divided "
                           "by (item popularity)^β (0 off, 1 the whole propensity).")(fn)
    fn = click.option("--diversity", type=click.FloatRange(0, 1), default=0.0, show_default=True,
                      help="Re-rank for diversity: maximal marginal relevance λ on item similarity "
                           "(text, else learned vectors) (0 off, 1 most diverse).")(fn)
    return fn


def _transfer_options(fn):
    fn = click.option("--split", "split_spec", default=None, metavar="SPEC",
                      help="With --data: the split of that dataset (default: the run's own split spec).")(fn)
    fn = click.option("--data", "other", default=None, metavar="NAME|PATH",
                      help="Another dataset's catalogue and users, ranked without training by a text-only "
                           "semgraph run (trained with --set ids=false): zero-shot transfer.")(fn)
    return fn


def _load(run_dir: str, other: str | None = None, split_spec: str | None = None):
    """The run, or (``--data``) the run moved onto another dataset without training."""
    from semrec.artifacts.run import load_run

    run = load_run(run_dir)
    if other is None:
        if split_spec is not None:
            raise click.UsageError("--split goes with --data (the run's own split is fixed)")
        return run
    from semrec.pipeline import transfer_run

    return transfer_run(run, other, split_spec, on_note=_note)


@cli.command()
@click.argument("run_dir", type=click.Path())
@click.option("--k", "ks", default="10,20", show_default=True, help="Cut-offs, comma-separated.")
@_rerank_options
@_transfer_options
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def evaluate(run_dir: str, ks: str, diversity: float, novelty: float, pool: int | None, other: str | None,
             split_spec: str | None, as_json: bool) -> None:
    """Full-ranking metrics of RUN_DIR on its test part (and RMSE/MAE for a rating run),
    with diversity, novelty, popularity and accuracy per user and item group; optionally
    of re-ranked lists, or of another dataset (--data) ranked without training."""
    from semrec.models.rerank import Rerank
    from semrec.pipeline import evaluate_run

    cut = _parse_ks(ks)
    _use_threads()
    run = _load(run_dir, other, split_spec)
    rerank = Rerank(diversity, novelty, pool)
    result = evaluate_run(run, cut, rerank)
    n_users, metrics, beyond = result["n_test_users"], result["metrics"], result["beyond"]
    if as_json:
        _json(result)
        return
    click.echo(f"{result['model']} on {result['dataset']} ({result['split']}), {n_users:,} test users")
    if rerank.active:
        click.echo(f"re-ranked from the best {rerank.pool_size(max(cut))}: diversity {diversity:g}, "
                   f"novelty {novelty:g}")
    _print_metrics(metrics)
    _print_beyond(beyond)
    _print_cold(result)


@cli.command()
@click.argument("run_dir", type=click.Path())
@click.option("--data", "other", required=True, metavar="NAME|PATH", help="The other dataset.")
@click.option("--split", "split_spec", default=None, metavar="SPEC",
              help="Its split (default: the run's own split spec).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New run folder to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing run at --out.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def transfer(run_dir: str, other: str, split_spec: str | None, out: str, overwrite: bool, as_json: bool) -> None:
    """Write RUN_DIR's text-only model (semgraph trained with --set ids=false) applied to
    another dataset, without training, as a new run folder to serve, evaluate or
    recommend from like any run (zero-shot transfer)."""
    from semrec.pipeline import save_transfer

    _use_threads()
    run = save_transfer(run_dir, other, out, split_spec, overwrite=overwrite, on_note=_note)
    summary = {"run": str(run.path), "from": run_dir, "dataset": run.info["dataset"]["name"],
               "split": run.info["split"], "n_users": len(run.users), "n_items": len(run.items),
               "metrics": run.metrics["test"]}
    if as_json:
        _json(summary)
        return
    m = summary["metrics"]
    click.echo(f"wrote {out}: {run_dir} on {summary['dataset']} ({summary['split']}), no training; "
               f"test recall@20 {m['recall@20']:.4f}, ndcg@20 {m['ndcg@20']:.4f}")


def _print_beyond(beyond: dict) -> None:
    head = beyond["head"]
    space = beyond["diversity_space"]
    click.echo(f"diversity: cosine in the {space} space; head: the top {head['share']:.0%} of items "
               f"({head['n_items']:,}, at least {head['min_train']:,} training interactions each)")
    groups = ", ".join(f"{name} {g['min_train']}-{g['max_train']} ({g['n_users']:,} users)"
                       for name, g in beyond["user_groups"].items())
    click.echo(f"user groups by training interactions: {groups}")


# ----------------------------------------------------------------------------- recommend


@cli.command()
@click.argument("run_dir", type=click.Path())
@click.option("--user", default=None, help="External user id (with --items: their new interactions).")
@click.option("--items", "history", default=None, metavar="ID,ID,...",
              help="Items an anonymous (or known) user interacted with: folded in, no retraining.")
@click.option("--text", "query", default=None, help="A sentence about what the user likes (text models).")
@click.option("--profile", default=None, metavar="FIELD=VALUE,...",
              help="Profile fields of a new user, e.g. age=25,occupation=engineer (semgraph with user text).")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(min=1), help="How many items.")
@_rerank_options
@_transfer_options
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def recommend(run_dir: str, user: str | None, history: str | None, query: str | None, profile: str | None,
              k: int, diversity: float, novelty: float, pool: int | None, other: str | None,
              split_spec: str | None, as_json: bool) -> None:
    """Top-K items for a known user of RUN_DIR, or for a new user described by items,
    a sentence or profile fields (cold start, no retraining). Seen items are excluded.
    --diversity and --novelty re-rank the best --pool items (the scores stay the model's).
    With --data, users and items are another dataset's, ranked without training."""
    from semrec.inference.coldstart import recommend_anonymous
    from semrec.inference.known import recommend as rec
    from semrec.models.rerank import Rerank

    if user is None and history is None and query is None and profile is None:
        raise click.UsageError("give --user ID, or describe a new user with --items, --text and/or --profile")
    items_given = [x.strip() for x in (history or "").split(",") if x.strip()]
    if history is not None and not items_given:
        raise click.BadParameter("expected comma-separated item ids like 50,172", param_hint="--items")
    fields = _parse_fields(profile) if profile is not None else None
    _use_threads()
    settings = Rerank(diversity, novelty, pool)
    n = settings.pool_size(k) if settings.active else k
    run = _load(run_dir, other, split_spec)
    if history is None and query is None and fields is None:
        items = rec(run, user, n)
    else:
        items = recommend_anonymous(run, items_given, query, n, user=user, profile=fields)
    if settings.active:
        items = _reranked(run, items, k, settings)
    if as_json:
        _json({"user": user, "items": items})
        return
    who = f"user {user}" if user is not None else "a new user"
    how = f" (re-ranked: diversity {diversity:g}, novelty {novelty:g})" if settings.active else ""
    _print_items(f"top {k} for {who}{how}", items)


def _reranked(run, items: list[dict], k: int, settings) -> list[dict]:
    """``k`` of ``items`` (a pool, best first) re-ranked by ``settings``
    (:func:`semrec.models.rerank.rerank` in the run's item space)."""
    import numpy as np

    from semrec.models.rerank import item_counts, item_space, rerank

    if not items:
        return items
    idx = run.items.indices([it["item"] for it in items])  # (P,)
    scores = np.asarray([it["score"] for it in items], dtype=np.float64)
    space = item_space(run.model, run.scorer, run.train_matrix()) if settings.diversity > 0 else None
    counts = item_counts(run.split.train.items, len(run.items)) if settings.novelty > 0 else None
    _, picked = rerank(scores[None, :], idx[None, :], k, diversity=settings.diversity, novelty=settings.novelty,
                       space=space, counts=counts)
    by_index = dict(zip(idx.tolist(), items))
    return [by_index[i] for i in picked[0].tolist() if i >= 0]


def _parse_fields(text: str) -> dict[str, str]:
    fields = {}
    for part in (p.strip() for p in text.split(",")):
        key, eq, value = part.partition("=")
        if not part or not eq or not key.strip():
            raise click.BadParameter(f"expected FIELD=VALUE pairs separated by commas, got {part!r}",
                                     param_hint="--profile")
        fields[key.strip()] = value.strip()
    return fields


def _print_items(header: str, items: list[dict]) -> None:
    click.echo(header)
    for rank, it in enumerate(items, 1):
        title = f"  {it['title']}" if it.get("title") else ""
        click.echo(f"{rank:>3}. [{it['item']}]{title}  ({it['score']:.3f})")


# ----------------------------------------------------------------------------- text


@cli.command()
@click.argument("dataset")
@click.option("--model", "encoder", default=None,
              help="Local model folder (sentence-transformers or Hugging Face); default: packaged MiniLM.")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--quiet", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def encode(dataset: str, encoder: str | None, batch_size: int, quiet: bool, as_json: bool) -> None:
    """Encode DATASET's item and user texts into the embedding cache."""
    from semrec.config import TextConfig
    from semrec.data.idmap import IdMap
    from semrec.data.load import load_dataset
    from semrec.text.features import text_features

    _use_threads()
    ds = load_dataset(dataset)
    items = IdMap(ds.items.index) if ds.items is not None else IdMap(ds.interactions["item_id"].unique())
    users = IdMap(ds.users.index) if ds.users is not None else None
    cfg = TextConfig(encoder=encoder, encode_batch_size=batch_size, knn=0)
    feats = text_features(ds, items, users, cfg, progress=not quiet)
    r = feats.report
    result = {
        "dataset": ds.name,
        "model": feats.encoder["name"],
        "fingerprint": feats.encoder["fingerprint"],
        "dim": feats.encoder["dim"],
        "texts": len(items) + (0 if users is None else len(users)),
        "encoded": int(r["encoded"]),
        "cached": int(r["cached"]),
        "texts_per_s": float(r["texts_per_s"]),
    }
    if as_json:
        _json(result)
        return
    click.echo(f"{result['dataset']}: {result['encoded']} texts encoded, {result['cached']} from cache "
               f"({result['texts_per_s']:.0f} texts/s, {result['model']}, d={result['dim']})")


@cli.command()
@click.argument("run_dir", type=click.Path())
@click.option("--item", default=None, help="External item id.")
@click.option("--text", "query", default=None, help="Free text describing what to find.")
@click.option("-k", "k", default=10, show_default=True, type=click.IntRange(min=1))
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def similar(run_dir: str, item: str | None, query: str | None, k: int, as_json: bool) -> None:
    """Items similar to an item (--item) or to free text (--text)."""
    from semrec.artifacts.run import load_run
    from semrec.inference.similar import similar_items, similar_to_text

    if (item is None) == (query is None):
        raise click.UsageError("give exactly one of --item ID or --text \"...\"")
    _use_threads()
    run = load_run(run_dir)
    items = similar_items(run, item, k) if item is not None else similar_to_text(run, query, k)
    if as_json:
        _json({"item": item, "items": items} if item is not None else {"text": query, "items": items})
        return
    what = f"item {item}" + (f" ({run.titles[item]})" if item in run.titles else "") if item else repr(query)
    _print_items(f"similar to {what}:", items)


# ----------------------------------------------------------------------------- models


@cli.command("models")
def models() -> None:
    """List the model names `train --model` accepts."""
    from semrec.models.catalog import MODELS

    width = max(map(len, MODELS)) + 2
    for name, spec in MODELS.items():
        click.echo(f"{name:<{width}}{spec.kind:<11}{spec.summary}")


# ----------------------------------------------------------------------------- demo


def _default_demo_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "semrec" / "runs" / "demo-ml-100k-mf"


#: The demo's budget: MF's validation NDCG@20 on ml-100k u1 peaks near epoch 16 (lr 5e-3), so
#: 20 epochs reach it on an idle machine (~15 s); on a busy one the time limit stops training
#: earlier, so that the first recommendations still come within a minute.
DEMO_EPOCHS = 20
DEMO_SECONDS = 20.0


@cli.command()
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder (default: ~/.cache/semrec/runs/demo-ml-100k-mf).")
@click.option("--user", default="1", show_default=True, help="Whose recommendations to show.")
@click.option("--epochs", default=DEMO_EPOCHS, show_default=True, type=click.IntRange(min=1))
@click.option("--seconds", default=DEMO_SECONDS, show_default=True,
              type=click.FloatRange(min=0, min_open=True),
              help="Training time budget: MF stops after the epoch that passes it (a busy machine "
                   "trains fewer epochs rather than keep you waiting).")
def demo(out: str | None, user: str, epochs: int, seconds: float) -> None:
    """Train MF on MovieLens-100K (split u1) and show recommendations for a user."""
    from semrec.artifacts.run import load_run
    from semrec.inference.known import recommend as rec
    from semrec.inference.known import user_history
    from semrec.pipeline import build_config, train_and_save

    out_dir = Path(out) if out else _default_demo_dir()
    _use_threads()
    click.echo("semrec demo: matrix factorisation (BPR) on MovieLens-100K, split u1")
    base = build_config("popularity", split="given:u1", sets=["tensorboard=false"])
    pop = train_and_save("ml-100k", base, out_dir.with_name(out_dir.name + "-popularity"), overwrite=True)
    config = build_config("mf", split="given:u1",
                          sets=[f"epochs={epochs}", f"max_seconds={seconds}", "tensorboard=false"])
    run = train_and_save("ml-100k", config, out_dir, overwrite=True)
    done = run.metrics["epochs_run"]
    early = f"; the {seconds:g}s budget ended training early: --seconds raises it" if done < epochs else ""
    epochs_done = f"{done} epoch{'s' * (done != 1)} in {run.metrics['fit_s']:.0f}s"
    click.echo(f"\nrun folder: {run.path}  ({epochs_done}{early})")
    click.echo(f"{'':<12}{'recall@20':>10}{'ndcg@20':>10}")
    for name, m in (("popularity", pop.metrics["test"]), ("mf", run.metrics["test"])):
        click.echo(f"{name:<12}{m['recall@20']:>10.4f}{m['ndcg@20']:>10.4f}")
    loaded = load_run(run.path)
    click.echo(f"\nuser {user} liked:")
    for it in user_history(loaded, user, limit=5):
        click.echo(f"     {it['title'] or it['item']}" + (f"  ({it['rating']:g}/5)" if it["rating"] else ""))
    click.echo("")
    _print_items(f"semrec recommends for user {user}:", rec(loaded, user, 10))
    click.echo(f"\nnext: semrec recommend {run.path} --user 42 --json")


# ----------------------------------------------------------------------------- entry point


from semrec.cli.experience import runs, tune  # noqa: E402
from semrec.cli.finetune import finetune  # noqa: E402
from semrec.cli.serve import explain, retrain, serve  # noqa: E402

cli.add_command(serve)
cli.add_command(retrain)
cli.add_command(explain)
cli.add_command(tune)
cli.add_command(runs)
cli.add_command(finetune)


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="semrec", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except SemrecError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(2)
    except OSError as e:  # a path the user gave cannot be read or written: say which and why
        where = f": {e.filename}" if e.filename else ""
        click.echo(f"error: {e.strerror or e}{where}", err=True)
        sys.exit(2)
    except MemoryError:
        click.echo("error: out of memory; lower the sizes (model.dim, train.batch_size) or use a smaller "
                   "dataset", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    sys.exit(0)
