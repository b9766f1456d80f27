"""The live state of a served run: what it learned plus everything posted since.

:class:`LiveState` is one run with the store's events, new items and deletions applied
(the service, :mod:`semrec.serve.service`, owns the store and the write lock; the
explanations are in :mod:`semrec.serve.explain`).

How each kind of update takes effect (no retraining):

* **an event** ``(user, item)`` adds ``item`` to the user's live items; the user's query
  vector is folded in again from the *set* of live items
  (:func:`semrec.inference.coldstart.user_vector`), so the next request sees it, and replaying
  the same events in any order gives the same vector: a restarted server answers exactly
  as the killed one did;
* **a new item** with text is embedded by :func:`~semrec.inference.coldstart.item_vector_from_text`
  and appended to the FAISS index at once;
* **deleting a user** removes their events from the store and forgets their trained
  vector and history here: from then on the id is an unknown user (cold start), and
  their interactions are left out of any retrain.

Models with an embedding space (``mf``, ``lightgcn``, ``xsimgcl``, ``semgraph``) answer
from the FAISS index, and with the exact index from each user's precomputed top items
(:mod:`semrec.serve.topcache`): a user with live events gets their own row, ranked at
the event, and a new item is merged into every row it enters. The others (popularity,
ItemKNN, graph filter, semantic) score the user's history row with the model itself and
cannot take new items.

Readers never lock: everything they read is replaced whole, never mutated (the
catalogue snapshot with its index, each user's entry), so a request works on one
consistent picture.
"""
from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F

from semrec.artifacts.run import Run, load_run
from semrec.data.idmap import IdMap
from semrec.errors import SemrecError
from semrec.evaluate.metrics import head_items
from semrec.evaluate.ranking import HEAD_SHARE
from semrec.models.base import EmbeddingScorer, HistoryScorer
from semrec.models.rerank import ItemSpace, Rerank, item_counts, item_space, rerank
from semrec.models.semgraph import SemGraph
from semrec.models.topk import topk
from semrec.serve.index import CategoryFilter, IndexConfig, ItemIndex, parse_category
from semrec.serve.store import Event, EventStore, StoredEvent, StoredItem
from semrec.serve.tail import Tail, Watermark
from semrec.serve.topcache import TopCache

log = logging.getLogger("semrec.serve")


class NotFound(SemrecError):
    """An id the request names is unknown (HTTP 404)."""


class Conflict(SemrecError):
    """The request contradicts stored state, e.g. an item id posted with other text (HTTP 409)."""


@dataclass(frozen=True)
class Catalogue:
    """Items as the service knows them: the run's, then the new ones. Never mutated."""

    items: IdMap
    titles: dict[str, str]
    view: Run  # the run, its scorer widened to the new items (embedding models)
    index: ItemIndex | None  # over the item vectors (embedding models)
    text_share: np.ndarray | None = None  # (n_items,) semgraph text share per item, computed at load
    top: TopCache | None = None  # the run users' precomputed top items (exact index)
    norms: np.ndarray | None = None  # (n_items,) lengths of the index's item vectors, for /similar
    #: (n_items, t) the items' language-model vectors, unit length, for a sentence's text match (semgraph)
    text_vectors: np.ndarray | None = None


@dataclass(frozen=True)
class LiveUser:
    """One user's live state. Never mutated; replaced whole."""

    index: int | None  # the run's internal index; None for new or deleted users
    items: np.ndarray  # internal item indices from live events, oldest first, each once (at its latest)
    vector: np.ndarray | None  # (d,) folded-in query vector (embedding models)
    top: TopCache | None = None  # one row: their top items under ``vector`` (exact index)



def coldstart_module():
    """:mod:`semrec.inference.coldstart`, imported on first use (it pulls in the text stack)."""
    from semrec.inference import coldstart

    return coldstart


class LiveState:
    """A run plus live events, items and deletions. Build with :meth:`load`.

    Args:
        run: the loaded run.
        index_config: how to index item vectors.
    """

    def __init__(self, run: Run, index_config: IndexConfig | None = None) -> None:
        self.run = run
        self.index_config = index_config = index_config or IndexConfig()
        self.vector_model = isinstance(run.scorer, EmbeddingScorer)
        index = norms = None
        if self.vector_model:
            index = ItemIndex(run.scorer.item_emb.float().cpu().numpy(), index_config)
            norms = np.linalg.norm(index.vectors, axis=1)
        texts = None
        if isinstance(run.scorer, HistoryScorer) and getattr(run.model, "item_text", None) is not None:
            texts = F.normalize(run.model.item_text.float().cpu(), dim=1).numpy()
        self.cat = Catalogue(IdMap(run.items.ids), dict(run.titles), run, index, norms=norms, text_vectors=texts)
        # Readers may look users up while a writer adds one; a reader that iterates takes
        # :meth:`live_users` (a copy), never this dict itself.
        self.users: dict[str, LiveUser] = {}
        self.deleted: set[str] = set()
        self.deletions: dict[str, int] = {}  # applied: user -> last event id at their deletion
        self.start_from(Watermark.read(run.path))
        self._categories: CategoryFilter | None = None
        self._categories_lock = threading.Lock()
        self._popular: torch.Tensor | None = None
        self._user_np: np.ndarray | None = None
        self._counts: np.ndarray | None = None  # training interactions per run item, for re-ranking
        self._space: ItemSpace | None = None  # the run's item space, for re-ranking
        self._head: np.ndarray | None = None  # the run's short head, for tail marks

    def start_from(self, mark: Watermark) -> None:
        """Count the store rows (and deletions) ``mark`` names as already in the run."""
        self.watermark = mark
        now = time.monotonic()
        self.event_tail = Tail(mark.events)
        self.event_tail.mark(mark.events_above, now)
        self.item_tail = Tail(mark.items)
        self.item_tail.mark(mark.items_above, now)
        self.deletions = dict(mark.deletions)

    @classmethod
    def load(cls, run_dir: str | Path | Run, store: EventStore, index_config: IndexConfig | None = None) -> LiveState:
        """Load ``run_dir`` (or take a loaded run) and replay ``store`` onto it (all of it,
        unless the run was retrained from this very store: then what came after)."""
        state = cls(run_dir if isinstance(run_dir, Run) else load_run(run_dir), index_config)
        if not state.watermark.applies_to(store):
            log.warning("%s was retrained from another event store than %s; replaying all of this one",
                        run_dir, store.dialect)
            state.start_from(Watermark())
        state.catch_up(store)
        state.warm_up()
        return state

    def warm_up(self) -> None:
        """Build now what the first request would otherwise build: the training matrix
        and the cold-start module every fold-in reads (about 50 ms on a Gowalla-sized run,
        which the first posted event used to wait for), and the user matrix."""
        if self.vector_model:
            coldstart_module()
            self.run.train_matrix()
            self._user_vectors()
            self._build_top()
        self.run.seen()
        model = self.run.model
        if isinstance(model, SemGraph) and self.cat.text_share is None:
            # the text share of every item, once: a reader must never publish a catalogue
            share = model.text_share(self.run.graph()).float().cpu().numpy()  # (n_run_items,)
            n_new = len(self.cat.items) - len(share)
            share = np.concatenate([share, np.ones(n_new, dtype=np.float32)])
            self.cat = dataclasses.replace(self.cat, text_share=share)

    def _build_top(self) -> None:
        """Rank every run user's unseen items once (see :mod:`semrec.serve.topcache`)."""
        cat, config = self.cat, self.index_config
        n_users = len(self.run.users)
        if not config.caching or cat.top is not None or not n_users:
            return
        if n_users * cat.index.n_items > config.cache_limit:
            log.info("no top-item cache: %d users x %d items is over serve.cache_limit (%d)",
                     n_users, cat.index.n_items, config.cache_limit)
            return
        t0 = time.perf_counter()
        seen = self.run.seen()
        # the run's own scorer: histories span the run's items, whatever was added since
        scorer = self.run.scorer
        history = self.run.seen_times() if scorer.ordered else seen
        queries = scorer.user_vectors(np.arange(n_users), history).float().cpu().numpy()
        top = TopCache.build(queries, cat.index.vectors, seen, config.cache_depth)
        self.cat = dataclasses.replace(cat, top=top)
        log.info("ranked the top %d of %d items for %d users in %.1fs", top.depth, cat.index.n_items,
                 n_users, time.perf_counter() - t0)

    @property
    def events_through(self) -> int:
        """Every stored event up to this id is applied (or was never committed)."""
        return self.event_tail.through

    # ------------------------------------------------------------------ replay
    def catch_up(self, store: EventStore) -> None:
        """Apply what ``store`` holds and this state has not seen: new items, new
        deletions, new events. Safe to call at any time and as often as wanted: on
        start, after a run switch, and by the poller that picks up what other server
        processes on the same store write.

        A deletion is applied once per (user, deletion): the user is forgotten, then
        their events stored after it are applied again, so an id that came back after
        its deletion keeps what it did since.
        """
        deletions = store.deleted_users()
        # events before items: an event's item is stored before the event, so every
        # event read here finds its item in the items read next
        rows = [e for e in store.events(after=self.event_tail.through) if self.event_tail.is_new(e.id)]
        items = [s for s in store.items(after=self.item_tail.through) if self.item_tail.is_new(s.id)]
        if items:
            self.add_items(items)
        gone = {u: last for u, last in deletions.items() if self.deletions.get(u) != last}
        for user, last in gone.items():
            self.forget_user(user)
            self.deletions[user] = last
        batch = [e for e in rows if e.user not in gone]
        if gone:  # what each forgotten user did after their deletion, applied or not
            batch += [e for e in store.events_of(list(gone), after=min(gone.values())) if e.id > gone[e.user]]
        if batch:
            self.apply_events(sorted(batch, key=lambda e: e.id))
        self.event_tail.mark([], time.monotonic())  # let gaps that never fill expire
        self.item_tail.mark([], time.monotonic())

    # ------------------------------------------------------------------ updates
    def add_items(self, stored: Sequence[StoredItem], vectors: np.ndarray | None = None) -> None:
        """Index new items (already stored), in store order; ``vectors`` ``(m, d)`` are
        their embeddings when the caller has them, else they are embedded from their text."""
        cat = self.cat
        fresh = [(j, s) for j, s in enumerate(stored) if s.item not in cat.items]
        if fresh:
            if not self.vector_model:
                raise SemrecError(f"model '{self.run.model_name}' cannot add items without retraining; "
                                  "serve an embedding model (semgraph embeds new items from text)")
            if vectors is None:
                vectors = np.stack([self.embed_item(s.text) for s in stored])
            index = cat.index.copy()
            index.add(np.asarray(vectors, dtype=np.float32)[[j for j, _ in fresh]])
            items = IdMap(cat.items.ids + [s.item for _, s in fresh])
            titles = dict(cat.titles)
            titles.update({s.item: s.title for _, s in fresh if s.title})
            share = None
            if cat.text_share is not None:  # a new item is carried by its text alone
                share = np.concatenate([cat.text_share, np.ones(len(fresh), dtype=np.float32)])
            first, added = cat.index.n_items, index.vectors[cat.index.n_items :]
            top = None if cat.top is None else cat.top.with_items(added, first)
            norms = np.concatenate([cat.norms, np.linalg.norm(added, axis=1)])
            texts = cat.text_vectors
            if texts is not None:
                from semrec.inference.similar import encode_texts

                fresh_texts = F.normalize(encode_texts(self.run, [s.text for _, s in fresh]), dim=1)
                texts = np.concatenate([texts, fresh_texts.numpy()])
            self.cat = Catalogue(items, titles, self._widen(index), index, share, top, norms, texts)
            # after the catalogue: a row may only name items the catalogue already knows
            for user, e in list(self.users.items()):
                if e.top is not None:
                    self.users[user] = dataclasses.replace(e, top=e.top.with_items(added, first))
        self.item_tail.mark([s.id for s in stored], time.monotonic())

    def embed_item(self, text: str) -> np.ndarray:
        """The vector ``(d,)`` a new item gets from its text."""
        if not self.vector_model:
            raise SemrecError(f"model '{self.run.model_name}' cannot add items without retraining; "
                              "serve an embedding model (semgraph embeds new items from text)")
        return coldstart_module().item_vector_from_text(self.run, text).float().numpy()

    def _widen(self, index: ItemIndex) -> Run:
        """The run with its scorer over every item of ``index`` (new items: degree 0)."""
        sc = self.run.scorer
        n_new = index.n_items - sc.n_items
        degree = sc.item_degree
        if degree is not None:
            degree = torch.cat([degree, torch.zeros(n_new, dtype=degree.dtype)])
        scorer = dataclasses.replace(sc, item_emb=torch.from_numpy(index.vectors.copy()), item_degree=degree)
        return dataclasses.replace(self.run, scorer=scorer)

    def apply_events(self, batch: Sequence[Event | StoredEvent]) -> None:
        """Add stored events to their users' live items and fold each user in once."""
        cat = self.cat
        by_user: dict[str, list[int]] = {}
        for e in batch:
            i = cat.items.get(e.item)
            if i is None:  # only when a run without this item was swapped in
                log.warning("event for unknown item %s ignored", e.item)
                continue
            by_user.setdefault(e.user, []).append(i)
        for user, new in by_user.items():
            old = self.users.get(user) or self._fresh_user(user)
            # event order is kept: a model that reads histories in order sees the newest last
            items = coldstart_module().last_occurrences(np.concatenate([old.items, np.asarray(new, dtype=np.int64)]))
            entry = LiveUser(old.index, items, self._fold_in(cat, old.index, items))
            self.users[user] = self._with_top(cat, entry)
        self.event_tail.mark([e.id for e in batch if isinstance(e, StoredEvent)], time.monotonic())

    def _fresh_user(self, user: str) -> LiveUser:
        index = None if user in self.deleted else self.run.users.get(user)
        return LiveUser(index, np.zeros(0, dtype=np.int64), None)

    def _fold_in(self, cat: Catalogue, u: int | None, items: np.ndarray) -> np.ndarray | None:
        if not self.vector_model:
            return None
        scorer = cat.view.scorer
        trained = u is not None and (scorer.trained_users is None or bool(scorer.trained_users[u]))
        if u is not None and not trained:
            # an untrained known user is scored from their whole history (as the CLI does)
            items = np.union1d(self.run.seen()[u].indices, items)
        vec = coldstart_module().user_vector(cat.view, items, None, u if trained else None)
        return None if vec is None else vec.float().numpy()

    def _with_top(self, cat: Catalogue, entry: LiveUser) -> LiveUser:
        """``entry`` with its own ranked row, at the cost of one scan now instead of one
        per request."""
        if entry.vector is None or not self.index_config.caching:
            return entry
        seen = self.seen(entry)
        row = sp.csr_matrix((np.ones(len(seen), np.float32), seen, [0, len(seen)]), shape=(1, cat.index.n_items))
        top = TopCache.build(entry.vector[None, :], cat.index.vectors, row, self.index_config.cache_depth)
        return dataclasses.replace(entry, top=top)

    def forget_user(self, user: str) -> None:
        """Drop the user's trained vector, run history and live items."""
        self.deleted.add(user)
        self.users[user] = LiveUser(None, np.zeros(0, dtype=np.int64), None)

    # ------------------------------------------------------------------ reads
    def live_users(self) -> dict[str, LiveUser]:
        """A copy of the users with live state, safe to iterate while writers add users
        (``dict.copy`` runs without releasing the GIL; iterating :attr:`users` itself
        can fail with "dictionary changed size during iteration")."""
        return self.users.copy()

    def user_entry(self, user: str) -> LiveUser:
        return self.users.get(user) or self._fresh_user(user)

    def query(self, entry: LiveUser) -> np.ndarray | None:
        """The user's query vector ``(d,)``: folded in after live events, else the run's own."""
        if entry.vector is not None or entry.index is None:
            return entry.vector
        scorer = self.run.scorer  # the run's own: the history row spans the run's items
        u = entry.index
        if scorer.trained_users is None or bool(scorer.trained_users[u]):
            return self._user_vectors()[u]
        history = (self.run.seen_times() if scorer.ordered else self.run.seen())[[u]]
        return scorer.user_vectors(np.asarray([u]), history)[0].float().numpy()

    def _user_vectors(self) -> np.ndarray:
        """The run's trained user vectors as one read-only float32 array (no per-request copy)."""
        if self._user_np is None:
            vectors = np.ascontiguousarray(self.run.scorer.user_emb.float().cpu().numpy())
            vectors.flags.writeable = False
            self._user_np = vectors
        return self._user_np

    def seen(self, entry: LiveUser) -> np.ndarray:
        """Internal indices the user has interacted with: the run's and the live ones."""
        if entry.index is None:
            return entry.items
        m = self.run.seen()
        # a row slice from the CSR arrays: microseconds, where m[u] builds a matrix per call
        row = m.indices[m.indptr[entry.index] : m.indptr[entry.index + 1]]
        return np.union1d(row, entry.items) if len(entry.items) else row

    def candidates(self, items: Sequence[str] | None, category: str | None) -> np.ndarray | None:
        """Internal indices allowed by an item list and/or a ``COLUMN:VALUE`` category."""
        cat = self.cat
        allowed = None
        if items is not None:
            idx = cat.items.indices(list(items))
            if (idx < 0).any():
                missing = [str(c) for c, i in zip(items, idx) if i < 0][:5]
                raise NotFound(f"candidates: unknown item id(s) {', '.join(missing)}")
            allowed = np.unique(idx)
        if category is not None:
            column, value = parse_category(category)
            ids = self.categories().items(column, value)
            in_cat = np.unique(cat.items.indices(ids)) if ids else np.zeros(0, dtype=np.int64)
            in_cat = in_cat[in_cat >= 0]
            allowed = in_cat if allowed is None else np.intersect1d(allowed, in_cat)
        return allowed

    @property
    def categories_loaded(self) -> bool:
        return self._categories is not None

    def categories(self) -> CategoryFilter:
        """The dataset's item table columns, read once on the first category request
        (disk work: the API calls this off the event loop until it is loaded)."""
        if self._categories is None:
            with self._categories_lock:  # one reader loads; the others wait for it
                if self._categories is None:
                    from semrec.data.load import load_dataset

                    path = (self.run.info.get("dataset") or {}).get("path")
                    columns: dict[str, dict[str, object]] = {}
                    if path and Path(path).is_dir():
                        ds = load_dataset(path, download=False)
                        if ds.items is not None:
                            columns = {c: ds.items[c].to_dict() for c in ds.items.columns}
                    self._categories = CategoryFilter(columns)
        return self._categories

    def recommend(
        self, user: str, k: int, allowed: np.ndarray | None = None, rerank: Rerank | None = None
    ) -> list[dict]:
        """Top-``k`` ``[{"item", "score", "title"}]`` for ``user``; an unknown (or deleted)
        user with no events gets the most popular items. With an active ``rerank`` the
        best ``rerank.pool_size(k)`` are ranked as usual (from the user's precomputed row
        when it is deep enough, else by the normal path) and ``k`` of them re-ranked."""
        cat = self.cat
        if rerank is None or not rerank.active:
            return _format(cat, *self._ranked(cat, user, k, allowed))
        # a pool deeper than the catalogue is the catalogue (and a cached row holds all of it)
        pool = max(k, min(rerank.pool_size(k), len(cat.items)))
        scores, idx = self._ranked(cat, user, pool, allowed)
        return _format(cat, *self._reranked(cat, scores, idx, k, rerank))

    def _ranked(self, cat: Catalogue, user: str, k: int,
                allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, items)`` of the user's best ``k``, best first."""
        entry = self.user_entry(user)
        if entry.index is None and not len(entry.items):
            return self._popular_items(cat, k, allowed)
        hit = None if allowed is not None else self._cached(cat, entry, k)
        if hit is not None:
            return hit
        seen = self.seen(entry)
        if self.vector_model:
            return cat.index.search(self.query(entry), k, exclude=seen, allowed=allowed)
        cs = coldstart_module()
        scores = cs.anonymous_scores(self.run, entry.items, None, entry.index)
        return self._top(cat, scores, k, seen, allowed)

    @staticmethod
    def _cached(cat: Catalogue, entry: LiveUser, k: int) -> tuple[np.ndarray, np.ndarray] | None:
        """The user's precomputed top ``k``, or ``None`` when there is none to read."""
        if entry.vector is not None or len(entry.items):  # live events: their own row, never the run's
            return None if entry.top is None else entry.top.row(0, k)
        if entry.index is None or cat.top is None:
            return None
        return cat.top.row(entry.index, k)

    def _popular_items(self, cat: Catalogue, k: int, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        if self._popular is None:
            self._popular = coldstart_module().popularity(self.run)
        return self._top(cat, self._popular.clone(), k, None, allowed)

    def _top(self, cat: Catalogue, scores: torch.Tensor, k: int, seen: np.ndarray | None,
             allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        n = scores.shape[0]  # the run's items; new items are not scored by this path
        seen_row = None
        if seen is not None and len(seen):
            s = seen[seen < n]
            seen_row = sp.csr_matrix((np.ones(len(s), np.float32), s, [0, len(s)]), shape=(1, n))
        if allowed is not None:
            allowed = allowed[allowed < n]
            if not len(allowed):
                return np.zeros(0, np.float32), np.zeros(0, np.int64)
        values, indices = topk(scores[None, :].float().clone(), k, seen=seen_row, candidates=allowed)
        return values[0].numpy(), indices[0].numpy()

    # ------------------------------------------------------------------ re-ranking
    def item_counts(self) -> np.ndarray:
        """Training interactions per run item ``(n_run_items,)`` (items posted since: none)."""
        if self._counts is None:
            self._counts = item_counts(self.run.split.train.items, len(self.run.items))
        return self._counts

    def head_items(self) -> np.ndarray:
        """``(n_run_items,)`` bool: the short head, the top ``HEAD_SHARE`` of the run's items
        by training interactions (:func:`semrec.evaluate.metrics.head_items`)."""
        if self._head is None:
            self._head = head_items(self.item_counts(), HEAD_SHARE)
        return self._head

    def item_space(self, cat: Catalogue) -> ItemSpace:
        """Where re-ranking measures similarity (:func:`semrec.models.rerank.item_space`):
        the run's text vectors (an item posted since has none: unlike every item), else the
        served item vectors, new items included, else training co-occurrence."""
        if self._space is None:
            self._space = item_space(self.run.model, self.run.scorer, self.run.train_matrix())
        if self._space.name == "learned" and cat.index is not None:
            return ItemSpace("learned", cat.index.vectors)
        return self._space

    def _reranked(self, cat: Catalogue, scores: np.ndarray, idx: np.ndarray, k: int,
                  settings: Rerank) -> tuple[np.ndarray, np.ndarray]:
        """``k`` of a pool re-ranked by ``settings`` (:func:`semrec.models.rerank.rerank`)."""
        scores, idx = np.asarray(scores, dtype=np.float64), np.asarray(idx, dtype=np.int64)
        if not len(idx):
            return scores, idx
        space = self.item_space(cat) if settings.diversity > 0 else None
        out_s, out_i = rerank(scores[None, :], idx[None, :], k, diversity=settings.diversity,
                              novelty=settings.novelty, space=space, counts=self.item_counts())
        return out_s[0], out_i[0]

    def recommend_anonymous(self, items: Sequence[str], text: str | None, k: int,
                            allowed: np.ndarray | None = None, rerank: Rerank | None = None) -> list[dict]:
        """Top-``k`` for someone described by item ids and/or a sentence (re-ranked by
        ``rerank`` as :meth:`recommend` does)."""
        cat = self.cat
        idx = cat.items.indices(list(items))
        if (idx < 0).any():
            missing = [str(c) for c, i in zip(items, idx) if i < 0][:5]
            raise NotFound(f"items: unknown item id(s) {', '.join(missing)}")
        idx = coldstart_module().last_occurrences(idx)  # in the order given: a history model reads the newest last
        if text is not None and not text.strip():
            raise SemrecError("text: the text is empty; describe what the user likes or leave it out")
        n = k if rerank is None or not rerank.active else max(k, min(rerank.pool_size(k), len(cat.items)))
        scores, found = self._ranked_anonymous(cat, idx, text, n, allowed)
        if rerank is not None and rerank.active:
            scores, found = self._reranked(cat, scores, found, k, rerank)
        return _format(cat, scores, found)

    def _ranked_anonymous(self, cat: Catalogue, idx: np.ndarray, text: str | None, k: int,
                          allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        cs = coldstart_module()
        if not len(idx) and text is None:
            return self._popular_items(cat, k, allowed)
        if self.vector_model:
            if text is not None and cat.text_vectors is not None:  # plus the sentence's own text match
                query = cs.encode_query(self.run, text)
                vec = cs.user_vector(cat.view, idx, query, None)
                scores = torch.from_numpy(cat.index.vectors @ vec.float().numpy())
                scores += cs.sentence_match(query[0], torch.from_numpy(cat.text_vectors))
                return self._top(cat, scores, k, idx, allowed)
            vec = cs.user_vector(cat.view, idx, text, None)
            return cat.index.search(vec.float().numpy(), k, exclude=idx, allowed=allowed)
        scores = cs.anonymous_scores(self.run, idx[idx < len(self.run.items)], text, None)
        return self._top(cat, scores, k, idx, allowed)

    def similar(self, item: str, k: int) -> list[dict]:
        """The ``k`` items closest to ``item`` by cosine (embedding models) or the run's own
        notion of similarity (semantic, ItemKNN)."""
        cat = self.cat
        i = cat.items.get(item)
        if i is None:
            raise NotFound(f"item: unknown item '{item}'")
        if self.vector_model:
            vectors, norms = cat.index.vectors, cat.norms
            v = vectors[i] / max(float(norms[i]), 1e-12)
            scores = torch.from_numpy(vectors @ v / np.maximum(norms, 1e-12))
            return self._top_all(cat, scores, k, i)
        from semrec.inference.similar import similar_items

        return similar_items(self.run, item, k)

    def _top_all(self, cat: Catalogue, scores: torch.Tensor, k: int, exclude: int) -> list[dict]:
        scores = scores.clone()[None, :]
        scores[0, exclude] = float("-inf")
        values, indices = torch.topk(scores, min(k, scores.shape[1]), dim=1)
        return _format(cat, values[0].numpy(), indices[0].numpy())


def _format(cat: Catalogue, scores: np.ndarray, indices: np.ndarray) -> list[dict]:
    keep = np.isfinite(scores)
    ids = cat.items.to_external(indices[keep].tolist())
    return [{"item": i, "score": float(s), "title": cat.titles.get(i)}
            for i, s in zip(ids, scores[keep].tolist())]

