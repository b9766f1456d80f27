"""The Python API: one object over the pipeline, DataFrames in and out.

>>> import semrec
>>> rec = semrec.Recommender("mf", epochs=20)                 # doctest: +SKIP
>>> rec.fit(interactions)                                       # doctest: +SKIP
>>> rec.recommend(["42"], k=10)                                 # doctest: +SKIP

A :class:`Recommender` holds one :class:`~semrec.artifacts.run.Run`: what ``semrec
train`` writes and every other command reads. :meth:`Recommender.save` writes exactly
that run folder and :meth:`Recommender.load` reads any, so a run trained by the CLI
loads here and a saved Recommender is a run ``semrec evaluate``, ``recommend`` and
``serve`` accept. The answers come from the same functions the CLI and the service
call (:mod:`semrec.inference`, :func:`semrec.pipeline.evaluate_run`).
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from semrec.artifacts.run import Run, load_run, staging, write_run
from semrec.config import set_pair
from semrec.data.dataset import Dataset, Interactions
from semrec.data.frames import dataset_from_frames
from semrec.data.idmap import IdMap
from semrec.data.load import load_dataset
from semrec.data.readers.common import check_template, index_table, render_table, validate_interactions
from semrec.errors import ConfigError, DataError, SemrecError
from semrec.models import catalog
from semrec.models.rerank import Rerank
from semrec.pipeline import DEFAULT_KS, RunConfig, build_config, evaluate_run, fit_run, grow_run

#: The split :meth:`Recommender.fit` uses when none is set and the data ships none.
DEFAULT_SPLIT = "random:0.8/0.1/0.1"
#: The columns of every answer.
COLUMNS = ["user", "item", "score", "rank", "title"]


class Recommender:
    """A recommender model by name, fitted on DataFrames or a dataset, answering in
    external ids.

    Args:
        model: a name from ``semrec models`` (:data:`semrec.models.catalog.MODELS`):
            ``popularity``, ``itemknn``, ``graphfilter``, ``semantic``, ``mf``,
            ``lightgcn``, ``xsimgcl``, ``semgraph`` (default).
        settings: ``--set``-style settings, as ``["epochs=20", "train.lr=0.01"]`` or
            ``{"epochs": 20, "train.lr": 0.01}``.
        config: a TOML file with ``[data]``, ``[model]``, ``[train]``, ``[text]`` sections,
            as ``semrec train --config`` reads.
        **hyper: more settings by bare name (``dim=32``, ``epochs=5``, ``seed=1``),
            applied after ``settings``. Unknown names and wrong types are a
            :class:`~semrec.errors.ConfigError` here, before any work.

    Example::

        rec = semrec.Recommender("semgraph", epochs=5)
        rec.fit(interactions, items=items)          # DataFrames (or a dataset name/folder)
        rec.recommend(["42", "7"], k=10)            # user, item, score, rank, title
        rec.recommend_for_history(["50", "172", "181"])
        rec.recommend_for_history(text="quiet sci-fi about time travel")
        rec.partial_fit(pd.DataFrame({"user_id": ["42"], "item_id": ["50"]}))
        rec.save("runs/sg"); rec = semrec.Recommender.load("runs/sg")
    """

    def __init__(self, model: str = "semgraph", settings: Mapping[str, Any] | Sequence[str] = (), *,
                 config: str | Path | None = None, **hyper: Any) -> None:
        self._sets = _pairs(settings) + _pairs(hyper)
        self.config: RunConfig = build_config(model, config, self._sets)
        self._config_file = config
        self.run: Run | None = None
        #: What loading, splitting and encoding noted (duplicates dropped, texts encoded, ...).
        self.notes: list[str] = []

    # ------------------------------------------------------------------ fitting
    def fit(self, interactions: pd.DataFrame | str | Path | Dataset, items: pd.DataFrame | None = None,
            users: pd.DataFrame | None = None, split: str | None = None) -> Recommender:
        """Fit the model; returns ``self``.

        Args:
            interactions: a DataFrame with columns ``user_id``, ``item_id`` and optionally
                ``rating`` and ``timestamp`` (ids of any type, compared as text); or a
                dataset name (``ml-100k``) or folder, as ``semrec train --data`` takes.
            items: with a DataFrame, the item table: ``item_id`` (column or index) and text
                columns (``title``, ``description``, ...), which text models read.
            users: likewise the user table (``user_id`` and profile columns).
            split: how to hold out validation and test interactions (see ``--split``);
                default: the settings' ``split``, else the split the data ships, else
                ``random:0.8/0.1/0.1``. Trainable models stop early on validation;
                every known interaction, held out or not, is history when recommending.
        """
        dataset = self._dataset(interactions, items, users)
        spec = split or self.config.data.split
        if split is None and spec == "given" and not dataset.given:
            spec = DEFAULT_SPLIT
        config = build_config(self.config.model, self._config_file, self._sets, spec)
        self.notes = []
        self.run = fit_run(dataset, config, on_note=self.notes.append)
        self.config = config
        return self

    def partial_fit(self, events: pd.DataFrame | None = None, items: pd.DataFrame | None = None) -> Recommender:
        """Add new events and new items without training; returns ``self``. The next
        answer takes them into account, and :meth:`save` keeps them.

        Args:
            events: ``user_id``, ``item_id`` [, ``timestamp``] [, ``rating``]; users may be
                new, items must be known or in ``items``. Without times, events count as
                newer than everything known, in the order given.
            items: new items: ``item_id`` (column or index) and either a ``text`` column or
                the columns of the item table the model was fitted with (rendered by its
                text template); ``title`` where there is one. Only models that embed text
                take new items (``semgraph``, ``semantic``).

        What each model does (see :func:`semrec.pipeline.grow_run`): ``semgraph`` encodes
        each touched user again, by its tower over the longer, time-ordered history, and
        places a new item by its text as training places an item without interactions;
        ``mf``, ``lightgcn`` and ``xsimgcl`` move a trained user by the change the new
        items make to their fold-in and fold new users in; popularity, ItemKNN, the graph
        filter and ``semantic`` score the user's longer history row. Items a user has
        interacted with are excluded from their recommendations at once.
        """
        run = self._fitted()
        new_items = self._new_items(run, items) if items is not None else pd.DataFrame(columns=["text", "title"])
        if len(new_items) and not catalog.spec(run.model_name).text:
            raise ConfigError(f"model '{run.model_name}' cannot add items without retraining: only models that "
                              "read text embed a new item (semgraph, semantic)")
        users = IdMap(run.users.ids)
        catalogue = IdMap(run.items.ids + list(new_items.index))
        inter = self._new_events(run, events, users, catalogue) if events is not None else None
        if inter is None and not len(new_items):
            return self
        if inter is None:
            inter = Interactions(np.zeros(0, np.int64), np.zeros(0, np.int64),
                                 None if run.split.train.ratings is None else np.zeros(0, np.float32),
                                 None if run.split.train.timestamps is None else np.zeros(0, np.int64))
        titles = {str(i): str(t) for i, t in new_items["title"].items() if isinstance(t, str) and t}
        self.run = grow_run(run, inter, users, catalogue, list(new_items["text"]), titles)
        return self

    # ------------------------------------------------------------------ answers
    def recommend(self, users: str | int | Iterable[str | int], k: int = 10, exclude_seen: bool = True,
                  items: Sequence[str | int] | None = None) -> pd.DataFrame:
        """The best ``k`` items for each known user: a DataFrame with columns ``user``,
        ``item``, ``score``, ``rank`` (1 = best) and ``title``, users in the order given.

        Args:
            users: one user id or several.
            k: items per user (fewer where fewer remain).
            exclude_seen: leave out the items each user has interacted with (default).
            items: only recommend among these item ids (candidates).
        """
        from semrec.inference.known import recommend_users

        run = self._fitted()
        _check_k(k)
        ids = [users] if isinstance(users, (str, int, np.integer)) else list(users)
        candidates = None if items is None else [str(i) for i in items]
        lists = recommend_users(run, [str(u) for u in ids], k, exclude_seen=exclude_seen, candidates=candidates)
        return _frame([(str(u), rows) for u, rows in zip(ids, lists)])

    def recommend_for_history(self, items: Sequence[str | int] = (), text: str | None = None, k: int = 10, *,
                              candidates: Sequence[str | int] | None = None) -> pd.DataFrame:
        """The best ``k`` items for someone known only by what they did and/or said: the
        items in ``items`` (oldest first) and the sentence ``text`` (text models). The
        given items are never recommended back; ``user`` is empty in the answer.

        ``semgraph`` reads the items, in order, through its user tower (the sentence as
        the newest entry); other embedding models fold the items in; ``semantic``
        compares the sentence and items with item texts; the rest score the history row.
        """
        from semrec.inference.coldstart import recommend_anonymous

        run = self._fitted()
        _check_k(k)
        if isinstance(items, str):
            raise ConfigError("items: expected a list of item ids (a sentence goes in text=...)")
        if not len(items) and text is None:
            raise ConfigError("give items (a list of item ids) and/or text (a sentence)")
        cand = None if candidates is None else [str(c) for c in candidates]
        rows = recommend_anonymous(run, [str(i) for i in items], text, k, candidates=cand)
        return _frame([(None, rows)])

    def similar_items(self, item: str | int | None = None, text: str | None = None, k: int = 10) -> pd.DataFrame:
        """The ``k`` items most like a known ``item`` (itself excluded), or matching a
        sentence ``text`` (text models): columns ``item``, ``score``, ``rank``, ``title``
        (``user`` empty)."""
        from semrec.inference.similar import similar_items, similar_to_text

        run = self._fitted()
        _check_k(k)
        if (item is None) == (text is None):
            raise ConfigError("give exactly one of item=ID or text=\"...\"")
        rows = similar_items(run, str(item), k) if item is not None else similar_to_text(run, text, k)
        return _frame([(None, rows)])

    def evaluate(self, ks: Sequence[int] = DEFAULT_KS, diversity: float = 0.0, novelty: float = 0.0,
                 pool: int | None = None) -> dict[str, Any]:
        """Full-ranking metrics on the test part: the JSON ``semrec evaluate --json``
        prints (``metrics`` with ``recall@K``, ``ndcg@K``, ...; ``cold`` where the split
        has cold entities; ``beyond``). ``diversity``/``novelty``/``pool`` re-rank as
        ``--diversity``/``--novelty``/``--pool`` do."""
        cut = tuple(sorted({int(k) for k in ks}))
        if not cut or min(cut) < 1:
            raise ConfigError(f"ks: expected cut-offs of at least 1, got {list(ks)}")
        try:
            rerank = Rerank(diversity, novelty, pool)
        except ValueError as e:
            raise ConfigError(str(e)) from None
        return evaluate_run(self._fitted(), cut, rerank)

    # ------------------------------------------------------------------ run folders
    def save(self, path: str | Path, overwrite: bool = False) -> Path:
        """Write the run folder ``path`` (what ``semrec train --out`` writes, with the
        events and items added since); an existing run is replaced only with
        ``overwrite``. Returns the path."""
        run = self._fitted()
        path = Path(path)
        with staging(path, overwrite=overwrite, flags=("", "overwrite=True")) as folder:
            write_run(folder, run)
        self.run = dataclasses.replace(run, path=path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """The Recommender of a run folder (written by :meth:`save`, ``semrec train``,
        ``retrain`` or ``transfer``)."""
        run = load_run(path)
        rec = cls.__new__(cls)
        rec._sets = []
        rec._config_file = None
        rec.config = RunConfig(model=run.model_name, data=run.data_config, train=run.train_config,
                               model_params=run.model_config, text=run.text_config)
        rec.run = run
        rec.notes = []
        return rec

    # ------------------------------------------------------------------ what it knows
    @property
    def model_name(self) -> str:
        return self.config.model

    @property
    def users(self) -> list[str]:
        """The known user ids."""
        return self._fitted().users.ids

    @property
    def items(self) -> list[str]:
        """The catalogue's item ids."""
        return self._fitted().items.ids

    def history(self, user: str | int) -> list[str]:
        """A known user's items, oldest first (every interaction the run knows)."""
        run = self._fitted()
        u = run.users.get(str(user))
        if u is None:
            raise SemrecError(f"unknown user '{user}'")
        return run.items.to_external(run.history_of(u).tolist())

    def __repr__(self) -> str:
        if self.run is None:
            return f"Recommender({self.config.model!r}, not fitted)"
        return (f"Recommender({self.config.model!r}, {len(self.run.users)} users, {len(self.run.items)} items"
                + (f", {self.run.path}" if self.run.path is not None else "") + ")")

    # ------------------------------------------------------------------ helpers
    def _fitted(self) -> Run:
        if self.run is None:
            raise SemrecError("this Recommender is not fitted yet: call fit(...) or Recommender.load(path)")
        return self.run

    @staticmethod
    def _dataset(interactions: Any, items: pd.DataFrame | None, users: pd.DataFrame | None) -> Dataset:
        if isinstance(interactions, Dataset):
            return interactions
        if isinstance(interactions, (str, Path)):
            if items is not None or users is not None:
                raise ConfigError("items and users tables go with an interactions DataFrame; a dataset "
                                  "folder brings its own (items.csv, users.csv)")
            return load_dataset(interactions)
        return dataset_from_frames(interactions, items, users)

    @staticmethod
    def _new_items(run: Run, items: pd.DataFrame) -> pd.DataFrame:
        """``items`` as a table indexed by new item id with ``text`` and ``title``."""
        if not isinstance(items, pd.DataFrame):
            raise DataError(f"expected a pandas DataFrame, got {type(items).__name__}", file="items")
        df = items.reset_index() if "item_id" not in items.columns and items.index.name == "item_id" else items
        df = df.copy()
        df.index = pd.RangeIndex(1, len(df) + 1)
        table, _ = index_table(df, "item_id", "items", index_name="item_id")
        known = [i for i in table.index if i in run.items]
        if known:
            raise DataError(f"item(s) {', '.join(known[:5])} are already in the catalogue; new items need new ids",
                            file="items", column="item_id")
        if "text" in table.columns:
            texts = table["text"].astype(str)
        else:
            template = (run.info.get("dataset") or {}).get("item_template")
            if not template:
                raise DataError("expected a 'text' column: the model was fitted without an item table, so "
                                "there is no template to write an item's text from its columns", file="items")
            check_template(template, list(table.columns), "items (the fitted item text template)")
            texts = render_table(template, table).astype(str)  # as the fitted items' texts were written
        empty = [i for i, t in texts.items() if not str(t).strip()]
        if empty:
            raise DataError(f"item(s) {', '.join(empty[:5])} have no text; a new item needs a description",
                            file="items")
        title = table["title"] if "title" in table.columns else pd.Series(None, index=table.index, dtype=object)
        return pd.DataFrame({"text": texts, "title": title}, index=table.index)

    @staticmethod
    def _new_events(run: Run, events: pd.DataFrame, users: IdMap, items: IdMap) -> Interactions:
        """``events`` checked as an interaction table, in the grown index space (``users``
        grows by the new users)."""
        if not isinstance(events, pd.DataFrame):
            raise DataError(f"expected a pandas DataFrame, got {type(events).__name__}", file="events")
        df = events.copy()
        df.index = pd.RangeIndex(1, len(df) + 1)  # the row numbers errors name
        table, _ = validate_interactions(df, "events")
        unknown = sorted({i for i in table["item_id"] if i not in items})
        if unknown:
            # the first row that names one (the checked table no longer holds row numbers)
            row = next((r for r, v in df["item_id"].items() if str(v).strip() in set(unknown)), None)
            raise DataError(f"unknown item id(s) {', '.join(repr(u) for u in unknown[:5])}; add new items with "
                            "their text (partial_fit(items=...)) before their events",
                            file="events", row=row, column="item_id")
        u = users.add(table["user_id"])
        i = items.indices(list(table["item_id"]))
        split = run.split
        times = None
        if split.train.timestamps is not None:
            if "timestamp" in table.columns:
                times = table["timestamp"].to_numpy(np.int64)
            else:  # newer than everything known, in the order given
                latest = run.seen_times().data.max(initial=0)
                times = int(latest) + 1 + np.arange(len(table), dtype=np.int64)
        ratings = None
        if split.train.ratings is not None:
            mean = float(np.mean(split.train.ratings)) if len(split.train.ratings) else 1.0
            ratings = (table["rating"].to_numpy(np.float32) if "rating" in table.columns
                       else np.full(len(table), mean, np.float32))
        return Interactions(u.astype(np.int64), i.astype(np.int64), ratings, times)


def _check_k(k: Any) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ConfigError(f"k: expected a whole number of items, at least 1, got {k!r}")


def _pairs(settings: Mapping[str, Any] | Sequence[str]) -> list[str]:
    """Settings as ``key=value`` pairs (what ``--set`` takes)."""
    if isinstance(settings, str):
        raise ConfigError(f"settings: expected key=value pairs in a list or a mapping, got the text {settings!r}")
    if isinstance(settings, Mapping):
        return [set_pair(str(k), v) for k, v in settings.items()]
    return [str(s) for s in settings]


def _frame(lists: list[tuple[str | None, list[dict]]]) -> pd.DataFrame:
    """``(user, [{"item", "score", "title"}, ...])`` pairs as one answer table."""
    rows = [(user, it["item"], it["score"], rank, it.get("title"))
            for user, items in lists for rank, it in enumerate(items, 1)]
    df = pd.DataFrame(rows, columns=COLUMNS)
    return df.astype({"score": "float64", "rank": "int64"})
