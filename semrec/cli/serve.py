"""``semrec serve``, ``semrec retrain`` and ``semrec explain``."""
from __future__ import annotations

import json
import time

import click


@click.command()
@click.argument("run_dir", type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--store", "store_url", default=None,
              help="Event store URL (sqlite:///PATH or postgresql+psycopg://USER:PW@HOST/DB); "
                   "default: RUN_DIR/events.sqlite.")
@click.option("--token", default=None, envvar="SEMREC_TOKEN",
              help="Bearer token required by the write endpoints (or SEMREC_TOKEN). Without one they "
                   "answer only clients on this machine.")
@click.option("--insecure", is_flag=True,
              help="Without --token, open the write endpoints to every client that can reach --host.")
@click.option("--runs-root", type=click.Path(file_okay=False), default=None,
              help="The folder POST /run may load runs from (default: RUN_DIR's parent).")
@click.option("--index", "index_kind", type=click.Choice(["flat", "hnsw", "ivf"]), default="flat",
              show_default=True, help="Item index: exact inner product, or approximate for large catalogues.")
@click.option("--precision", type=click.Choice(["float32", "float16"]), default="float32", show_default=True,
              help="How the index stores item vectors; float16 halves its memory.")
@click.option("--cache-depth", default=100, show_default=True, type=click.IntRange(min=0),
              help="With the exact index, rank each user's best N unseen items at load and keep "
                   "them exact as events and items arrive, so a request for k <= N is a lookup; 0: off.")
@click.option("--poll", default=1.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds between reads of the store for what other server processes on it "
                   "wrote; 0: never (one server per store).")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(min=1),
              help="Threads each request's vector search and tensor ops may use; requests already "
                   "run side by side, so one per request keeps the cores from being oversubscribed.")
def serve(run_dir: str, host: str, port: int, store_url: str | None, token: str | None, insecure: bool,
          runs_root: str | None, index_kind: str, precision: str, cache_depth: int, poll: float,
          threads: int) -> None:
    """Serve RUN_DIR over HTTP, replaying the event store first.

    Reads are open to every client that reaches --host. Writes (events, items, user
    deletion, switching runs) need --token; without it they answer only clients on this
    machine, and a --host other than loopback is refused unless --insecure says to open
    them to everyone."""
    if not token and not insecure and not _loopback_host(host):
        raise click.UsageError(f"--host {host} is reachable from other machines and the write endpoints "
                               "would be open to them: pass --token SECRET (or set SEMREC_TOKEN), "
                               "or --insecure to open them anyway")
    import faiss  # noqa: F401  (loaded before use_threads, which then limits its OpenMP pool too)
    import uvicorn

    from semrec.serve.api import create_app
    from semrec.serve.index import IndexConfig
    from semrec.serve.live import Service
    from semrec.train.threads import use_threads

    # loading (the top-item cache above all) may use the cores other processes leave free;
    # serving then keeps to --threads per request (numpy's BLAS and FAISS too)
    use_threads()
    started = time.perf_counter()
    service = Service(run_dir, store_url, IndexConfig(kind=index_kind, precision=precision, cache_depth=cache_depth),
                      poll=poll, runs_root=runs_root)
    use_threads(threads)
    health = service.health()
    cached = f", top {cache_depth} ranked for {health['cached_users']:,} users" if health["cached_users"] else ""
    click.echo(f"serving {health['run']} ({health['model']}, {health['n_items']:,} items, "
               f"{health['live_users']:,} live users{cached}; loaded in {time.perf_counter() - started:.1f}s) "
               f"on http://{host}:{port}", err=True)
    try:
        uvicorn.run(create_app(service, token or None, open_writes=insecure), host=host, port=port, log_level="warning",
                    access_log=False, timeout_graceful_shutdown=10)
    finally:
        service.close()


def _loopback_host(host: str) -> bool:
    """Whether ``host`` (an address or name) listens on this machine's loopback only."""
    import ipaddress
    import socket

    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    return bool(addresses) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addresses)


@click.command()
@click.argument("run_dir", type=click.Path())
@click.option("--store", "store_url", default=None, help="Event store URL (default: the run's own).")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="New run folder to write.")
@click.option("--overwrite", is_flag=True,
              help="Replace an existing run at --out (a run with an event store is moved aside, never deleted).")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override training settings, e.g. --set epochs=5 --set lr=0.001.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable summary.")
def retrain(run_dir: str, store_url: str | None, out: str, overwrite: bool, sets: tuple[str, ...], quiet: bool,
            as_json: bool) -> None:
    """Warm-start RUN_DIR's model on its data plus the stored events; write a new run."""
    from semrec.serve.retrain import retrain as do_retrain
    from semrec.train.threads import use_threads

    def note(text: str) -> None:
        click.echo(f"note: {text}", err=True)

    use_threads()  # an explicit --set threads=N applies when training starts
    summary = do_retrain(run_dir, out, store_url=store_url, overwrite=overwrite, on_note=note,
                         sets=list(sets) + (["progress=false"] if quiet else []))
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"wrote {summary['run']}  ({summary['model']}: {summary['new_events']:,} stored events, "
               f"{summary['new_users']:,} new users, {summary['new_items']:,} new items, "
               f"{summary['deleted_users']:,} deleted users; fit {summary['fit_s']:.1f}s)")
    click.echo(f"switch a running service to it: POST /run {{\"run\": \"{summary['run']}\"}}")


@click.command()
@click.argument("run_dir", type=click.Path())
@click.option("--user", required=True, help="External user id.")
@click.option("--item", required=True, help="External item id.")
@click.option("--store", "store_url", default=None, help="Event store URL (default: the run's own).")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def explain(run_dir: str, user: str, item: str, store_url: str | None, as_json: bool) -> None:
    """Why RUN_DIR recommends ITEM to USER: the past items behind it, text vs behaviour."""
    from semrec.serve.index import IndexConfig
    from semrec.serve.live import Service
    from semrec.train.threads import use_threads

    use_threads()
    # one answer: no precomputed rows, no polling for other servers
    service = Service(run_dir, store_url, IndexConfig(cache_depth=0), poll=0)
    try:
        e = service.state.explain(user, item)
    finally:
        service.close()
    if as_json:
        click.echo(json.dumps(e, indent=2, ensure_ascii=False))
        return
    click.echo(e["sentence"])
    for b in e["because"]:
        title = f"  {b['title']}" if b.get("title") else ""
        click.echo(f"  [{b['item']}]{title}  {b['share']:.0%}")
