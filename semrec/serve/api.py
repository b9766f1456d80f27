"""The HTTP API (FastAPI): recommendations, similar items, explanations, events, new
items and user deletion over one :class:`~semrec.serve.live.Service`.

Shapes outside checks rely on::

    GET  /recommend?user=ID&k=10          {"user": ID, "items": [{"item", "score", "title"}, ...]}
         [&diversity=0.3][&novelty=0.5]   re-ranked (semrec.models.rerank), same shape
    POST /recommend  {"items": [...], "text": "...", "diversity"?, "novelty"?}    same shape, "user": null
    GET  /similar?item=ID&k=10            {"item": ID, "items": [...]}
    GET  /explain?user=ID&item=ID         {"user", "item", "score", "because": [...],
                                           "text_share", "behaviour_share", "sentence", ...}
    POST /events  {"user", "item", "rating"?, "timestamp"?, "key"?} or {"events": [...]}
    POST /items   {"item", "text", "title"?}
    DELETE /users/{id}
    GET  /health
    GET  /users?query=TEXT&limit=20       {"users": [{"user", "n_items"}, ...]}   (search by id)
    GET  /history?user=ID&limit=50        {"user": ID, "known": bool, "items": [{"item", "title",
                                           "rating", "live"}, ...]}   (live events first)
    GET  /popularity?items=ID,ID          {"head_share", "head_min_interactions", "items": [{"item",
                                           "interactions", "tail"}, ...]}   (for the web page)
    GET  /                                the web page (``semrec/web/``), its files under /static/

Ids are the dataset's external ids, as strings (JSON integers are accepted and read as
strings). Write endpoints (``POST /events``, ``POST /items``, ``DELETE /users``,
``POST /run``) need ``Authorization: Bearer TOKEN`` when the app has a token; without
one they answer only clients on this machine (loopback), unless the app was made with
``open_writes`` (``semrec serve --insecure``). Bad requests get a 4xx whose body is
``{"detail": "...", "errors": [{"field", "message"}]?}`` (:class:`ErrorOut`), ``detail``
naming the field and what was expected; every such status is in the OpenAPI schema.
``POST /run`` loads only run folders under the service's runs root, of the served dataset.
"""
from __future__ import annotations

import ipaddress
import json
import re
import secrets
from importlib import resources
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl

import numpy as np
from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    WithJsonSchema,
)
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from semrec import __version__
from semrec.errors import SemrecError
from semrec.evaluate.ranking import HEAD_SHARE
from semrec.models.rerank import MAX_NOVELTY, Rerank
from semrec.serve.live import Conflict, LiveState, NotFound, Service
from semrec.serve.store import MAX_ID, Event, StoreError

MAX_K = 1000
MAX_EVENTS = 10_000  # per POST /events
MAX_CANDIDATES = 10_000
MAX_TEXT = 10_000  # characters of item or query text
MAX_BODY = 4 * 1024 * 1024  # bytes of one request body
MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z in Unix seconds
MAX_RATING = 1e9  # ratings are on a small scale; this only keeps them finite in float32


MAX_INT_ID = 10**18  # JSON integers accepted as ids, up to this size either way
DIVERSITY_HELP = ("re-rank for diversity: maximal marginal relevance λ over item similarity (text, else "
                  "learned vectors), 0 (default, off) to 1 (most diverse)")
NOVELTY_HELP = (f"re-rank against popularity: inverse-propensity strength β, the relevance divided by "
                f"(item popularity)^β, 0 (default, off) to {MAX_NOVELTY:g}; 1 divides by the whole propensity")


def _as_id(value: Any) -> Any:
    # external ids are strings; JSON integers name the same ids ("42" == 42)
    if isinstance(value, float) and value.is_integer():  # 42.0 is the integer 42 to JSON Schema
        value = int(value)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= MAX_INT_ID:
        return str(value)
    return value


def _storable(value: str | None) -> str | None:
    """Text every store can keep: no NUL character (PostgreSQL refuses it) and no lone
    surrogate (not UTF-8)."""
    if value is None:
        return value
    if "\x00" in value:
        raise ValueError("the NUL character (\\u0000) is not allowed")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("a lone surrogate (\\ud800-\\udfff) is not allowed; send UTF-8 text") from None
    return value


Text = Annotated[str, AfterValidator(_storable)]
#: An external id: a string, or a JSON integer read as one (what the schema says too).
Id = Annotated[str, BeforeValidator(_as_id), Field(min_length=1, max_length=MAX_ID), AfterValidator(_storable),
               WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1, "maxLength": MAX_ID},
                                         {"type": "integer", "minimum": -MAX_INT_ID, "maximum": MAX_INT_ID}]})]
#: Text that must say something: at least one character that is not white space.
Said = Annotated[str, AfterValidator(_storable), Field(pattern=r"\S")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class EventIn(_Strict):
    """One interaction."""

    user: Id
    item: Id
    rating: float | None = Field(None, allow_inf_nan=False, ge=-MAX_RATING, le=MAX_RATING)
    timestamp: int | None = Field(None, ge=0, le=MAX_TIMESTAMP,
                                  description="Unix seconds (at most year 9999); default: when it is stored")
    key: Annotated[str, AfterValidator(_storable)] | None = Field(
        None, min_length=1, max_length=MAX_ID,
        description="idempotency key: an event whose key is stored is not stored again")


class EventBatch(_Strict):
    events: list[EventIn] = Field(min_length=1, max_length=MAX_EVENTS)


def _event_shape(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "events" in value else "one"


EventsBody = Annotated[
    Annotated[EventBatch, Tag("batch")] | Annotated[EventIn, Tag("one")], Discriminator(_event_shape)
]


class EventsOut(BaseModel):
    received: int
    stored: int
    duplicates: int


class ItemIn(_Strict):
    item: Id
    text: Said = Field(min_length=1, max_length=MAX_TEXT)
    title: Text | None = Field(None, max_length=MAX_TEXT)


class ItemOut(BaseModel):
    item: str
    created: bool


class AnonymousIn(_Strict):
    """Someone the run does not know, described by items they liked and/or a sentence."""

    items: list[Id] = Field(default_factory=list, max_length=MAX_CANDIDATES)
    text: Said | None = Field(None, max_length=MAX_TEXT)
    k: int = Field(10, ge=1, le=MAX_K)
    candidates: list[Id] | None = Field(None, max_length=MAX_CANDIDATES)
    category: str | None = Field(None, max_length=MAX_ID, description="COLUMN:VALUE, e.g. genres:Comedy")
    diversity: float = Field(0.0, ge=0, le=1, allow_inf_nan=False, description=DIVERSITY_HELP)
    novelty: float = Field(0.0, ge=0, le=MAX_NOVELTY, allow_inf_nan=False, description=NOVELTY_HELP)


class Scored(BaseModel):
    item: str
    score: float
    title: str | None = None


class Recommendations(BaseModel):
    user: str | None
    items: list[Scored]


class Similar(BaseModel):
    item: str
    items: list[Scored]


class Because(BaseModel):
    item: str
    title: str | None = None
    contribution: float
    share: float


class Explanation(BaseModel):
    user: str
    item: str
    title: str | None = None
    score: float | None
    known_user: bool
    because: list[Because]
    text_share: float | None
    behaviour_share: float | None
    sentence: str


class UserHit(BaseModel):
    user: str
    n_items: int


class Users(BaseModel):
    users: list[UserHit]


class HistoryItem(BaseModel):
    item: str
    title: str | None = None
    rating: float | None = None
    live: bool


class History(BaseModel):
    user: str
    known: bool
    items: list[HistoryItem]


class ItemPopularity(BaseModel):
    item: str
    interactions: int
    tail: bool


class Popularity(BaseModel):
    head_share: float
    head_min_interactions: int
    items: list[ItemPopularity]


class Deleted(BaseModel):
    user: str
    events_deleted: int
    known: bool


class SwapIn(_Strict):
    run: Text = Field(min_length=1, max_length=4096,
                      description="a run folder under the server's runs root: its name there, or its path")


class SwapOut(BaseModel):
    run: str
    previous: str
    model: str


class FieldError(BaseModel):
    field: str
    message: str


class ErrorOut(BaseModel):
    """Every error answer: ``detail`` says what was wrong and names the field; a
    validation error (422) also lists each field in ``errors``."""

    detail: str
    errors: list[FieldError] | None = None


_ERRORS = {
    401: "a bearer token is required (the server has --token)",
    403: "write endpoints answer only clients on the server's machine when it has no token",
    404: "an id or run the request names is unknown",
    409: "the request contradicts what is stored",
    413: f"the request body is larger than {MAX_BODY} bytes",
    422: "a field is missing or invalid; the body must be JSON sent with Content-Type: application/json",
    503: "the event store is unavailable",
}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses (and 413/422, which any request may get)."""
    return {code: {"model": ErrorOut, "description": _ERRORS[code]} for code in sorted({*codes, 413, 422})}


class _BodyLimit:
    """Pure ASGI middleware: a request body above ``limit`` bytes gets 413, whether it
    announces its length or streams it in chunks. The body is read here, before the app
    (which would read it whole anyway), so the app never sees a cut-off body."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            await _send_json(send, 413, {"detail": f"request body is larger than {self.limit} bytes"})
            return
        chunks, seen = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: nothing to answer
                return
            body = message.get("body", b"")
            seen += len(body)
            if seen > self.limit:
                await _send_json(send, 413, {"detail": f"request body is larger than {self.limit} bytes"})
                return
            chunks.append(body)
            if not message.get("more_body", False):
                break
        pending = [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]

        async def replay():
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


class _FastRecommend:
    """Pure ASGI middleware: a well-formed ``GET /recommend?user=ID[&k=N]`` (also with
    ``&diversity=X`` / ``&novelty=Y`` as plain decimals: re-ranked) is answered here; every other request, and any request this path cannot answer plainly, goes on
    to the FastAPI app, which owns validation, error messages and the OpenAPI schema.

    Why: FastAPI's per-request machinery (dependency solving, query validation, response
    model serialisation) costs more than the recommendation it wraps once rows are
    precomputed. Measured with wrk on 2 cores, 16 connections, a constant answer: 2,967
    req/s through a FastAPI route against 7,296 through a bare ASGI callable
    (``benchmarks/serve_load.py --variants ceiling,bare``). The answer is the same JSON,
    byte for byte (``tests/serve/test_api.py``).
    """

    def __init__(self, app, service: Service) -> None:
        self.app, self.service = app, service

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["path"] == "/recommend" and scope["method"] == "GET":
            query = _plain_recommend_query(scope["query_string"])
            if query is not None:
                try:
                    items = self.service.state.recommend(query[0], query[1], None, query[2])
                except SemrecError:
                    items = None  # the app answers again, with its error response
                if items is not None:
                    await _send_json(send, 200, {"user": query[0], "items": items})
                    return
        await self.app(scope, receive, send)


def _plain_recommend_query(raw: bytes) -> tuple[str, int, Rerank | None] | None:
    """``(user, k, rerank)`` from ``user=ID[&k=N][&diversity=X][&novelty=Y]`` when every
    part is plainly valid (strengths as plain decimals in range), else ``None``."""
    try:
        pairs = parse_qsl(raw.decode("ascii"), keep_blank_values=True, strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    params = dict(pairs)
    if len(params) != len(pairs) or not params.keys() <= {"user", "k", "diversity", "novelty"}:
        return None
    user, k = params.get("user", ""), params.get("k", "10")
    if not 1 <= len(user) <= MAX_ID or not (k.isascii() and k.isdigit()) or not 1 <= int(k) <= MAX_K:
        return None
    strengths = []
    for name, top in (("diversity", 1.0), ("novelty", MAX_NOVELTY)):
        text = params.get(name, "0")
        if len(text) > 20 or not _PLAIN_DECIMAL.fullmatch(text) or not 0 <= float(text) <= top:
            return None
        strengths.append(float(text))
    rerank = Rerank(*strengths)
    return user, int(k), rerank if rerank.active else None


_PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


async def _send_json(send, status: int, content: Any) -> None:
    """Answer with ``content`` as JSON, rendered as Starlette's ``JSONResponse`` renders it."""
    body = json.dumps(content, ensure_ascii=False, allow_nan=False, indent=None, separators=(",", ":")).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-length", str(len(body)).encode()), (b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})


def _field(loc: tuple) -> str:
    if loc and loc[0] in ("body", "query", "path", "header"):
        loc = loc[1:]  # where the field was, not its name (a query parameter may be called "query")
    parts = [str(p) for p in loc if not str(p).startswith("function-")]
    # the tag a discriminated union adds ("one"/"batch") is not a field the client wrote
    parts = [p for p in parts if p not in ("one", "batch")]
    return ".".join(parts) or "body"


# module level: FastAPI resolves the (postponed) annotations of endpoints in this namespace
_bearer = HTTPBearer(auto_error=False)


def create_app(service: Service, token: str | None = None, fast_reads: bool = True,
               open_writes: bool = False) -> FastAPI:
    """The FastAPI app over ``service``. Write endpoints need ``token`` when it is set;
    without one they answer loopback clients only, unless ``open_writes``.
    ``fast_reads=False`` sends every request through FastAPI (see :class:`_FastRecommend`)."""
    app = FastAPI(
        title="semrec",
        version=__version__,
        description="Recommendations from what things mean and who did what, updated as events arrive.",
        docs_url=None,  # served below from local files: the default page loads Swagger UI from a CDN
        redoc_url=None,
    )
    app.state.service = service
    app.add_middleware(_BodyLimit, limit=MAX_BODY)
    if fast_reads:
        app.add_middleware(_FastRecommend, service=service)  # added last: runs first

    def authorised(creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        if creds is None or not secrets.compare_digest(creds.credentials.encode(), token.encode()):
            raise _HTTPError(401, "a bearer token is required for this endpoint: "
                                  "send 'Authorization: Bearer TOKEN'", {"WWW-Authenticate": "Bearer"})

    def from_this_machine(request: Request) -> None:
        if open_writes or _is_loopback(request.client.host if request.client else None):
            return
        raise _HTTPError(403, "write endpoints answer only clients on the server's own machine when the "
                              "server has no token; start it with --token SECRET (or SEMREC_TOKEN)")

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _field(tuple(e.get("loc", ()))), "message": e.get("msg", "invalid")}
                  for e in exc.errors()]
        kind = request.headers.get("content-type")
        if any(e["field"] == "body" for e in errors) and kind and not _is_json(kind):
            errors.insert(0, {"field": "body", "message": f"expected JSON sent with 'Content-Type: "
                                                          f"application/json', got Content-Type '{kind}'"})
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return JSONResponse({"detail": detail, "errors": errors[:50]}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_exception(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI answers 400 for a body it cannot decode at all (not UTF-8): a 422 like any bad body
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            return JSONResponse({"detail": "body: not JSON (expected a UTF-8 JSON document sent with "
                                           "'Content-Type: application/json')"}, status_code=422)
        return JSONResponse({"detail": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(_HTTPError)
    async def http_error(_request: Request, exc: _HTTPError) -> JSONResponse:
        return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)

    @app.exception_handler(SemrecError)
    async def semrec_error(_request: Request, exc: SemrecError) -> JSONResponse:
        status = 422
        if isinstance(exc, NotFound):
            status = 404
        elif isinstance(exc, Conflict):
            status = 409
        elif isinstance(exc, StoreError):
            status = 503
        return JSONResponse({"detail": str(exc)}, status_code=status)

    write = [Depends(authorised if token is not None else from_this_machine)]

    # the API's own page on what it offers (Swagger UI), from files installed with semrec
    app.mount("/docs-assets", StaticFiles(directory=str(SWAGGER_DIR)), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="semrec API",
                                   swagger_js_url="/docs-assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-assets/swagger-ui.css",
                                   swagger_favicon_url="/docs-assets/favicon.png")

    @app.get("/health")
    def health() -> dict[str, Any]:
        """Liveness and what is being served."""
        return service.health()

    # The hot read endpoints are coroutines: their work is short, CPU-bound and lock-free
    # (readers never lock, see semrec.serve.live), so they run on the event loop instead of
    # paying a hop to the thread pool and the GIL hand-offs of 16+ threads per request.
    # Writers (store commits) stay plain functions and run in the pool.
    @app.get("/recommend", response_model=Recommendations, responses=_errors(404))
    async def recommend(
        user: Annotated[str, Query(min_length=1, max_length=MAX_ID)],
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
        candidates: Annotated[str | None, Query(max_length=MAX_CANDIDATES * (MAX_ID + 1),
                                                description="comma-separated item ids allowed")] = None,
        category: Annotated[str | None, Query(max_length=MAX_ID, description="COLUMN:VALUE")] = None,
        diversity: Annotated[float, Query(ge=0, le=1, allow_inf_nan=False, description=DIVERSITY_HELP)] = 0.0,
        novelty: Annotated[float, Query(ge=0, le=MAX_NOVELTY, allow_inf_nan=False,
                                        description=NOVELTY_HELP)] = 0.0,
    ) -> dict[str, Any]:
        """Top-k items for a user, seen items left out; unknown users get cold-start picks.
        ``diversity`` and ``novelty`` re-rank the best max(100, 2k) (scores stay the model's)."""
        state = service.state
        cand = None if candidates is None else [c for c in candidates.split(",") if c]
        if cand is not None and len(cand) > MAX_CANDIDATES:
            raise _HTTPError(422, f"candidates: at most {MAX_CANDIDATES} item ids, got {len(cand)}")
        if category is not None and not state.categories_loaded:
            await run_in_threadpool(state.categories)  # reads the dataset: not on the event loop
        allowed = state.candidates(cand, category)
        rerank = Rerank(diversity, novelty)
        return {"user": user, "items": state.recommend(user, k, allowed, rerank if rerank.active else None)}

    @app.post("/recommend", response_model=Recommendations, responses=_errors(404))
    def recommend_anonymous(body: AnonymousIn) -> dict[str, Any]:
        """Top-k for someone described by item ids and/or a sentence (cold start)."""
        state = service.state
        allowed = state.candidates(body.candidates, body.category)
        rerank = Rerank(body.diversity, body.novelty)
        items = state.recommend_anonymous(body.items, body.text, body.k, allowed, rerank if rerank.active else None)
        return {"user": None, "items": items}

    @app.get("/similar", response_model=Similar, responses=_errors(404))
    async def similar(
        item: Annotated[str, Query(min_length=1, max_length=MAX_ID)],
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 10,
    ) -> dict[str, Any]:
        """Items most like an item."""
        return {"item": item, "items": service.state.similar(item, k)}

    @app.get("/explain", response_model=Explanation, responses=_errors(404))
    def explain(
        user: Annotated[str, Query(min_length=1, max_length=MAX_ID)],
        item: Annotated[str, Query(min_length=1, max_length=MAX_ID)],
    ) -> dict[str, Any]:
        """Why an item suits a user: the past items behind it and its text/behaviour share."""
        return service.state.explain(user, item)

    write_errors = (401,) if token is not None else (403,)

    @app.post("/events", response_model=EventsOut, dependencies=write,
              responses=_errors(*write_errors, 404, 503))
    def events(body: EventsBody) -> dict[str, int]:
        """Store interactions (committed before the answer) and fold them in at once."""
        batch = body.events if isinstance(body, EventBatch) else [body]
        return service.post_events([Event(e.user, e.item, e.rating, e.timestamp, e.key) for e in batch])

    @app.post("/items", response_model=ItemOut, status_code=201, dependencies=write,
              responses={200: {"model": ItemOut, "description": "the item was posted before with this text"},
                         **_errors(*write_errors, 409, 503)})
    def items(body: ItemIn) -> JSONResponse:
        """Add an item from its text: embedded, indexed and recommendable at once."""
        out = service.post_item(body.item, body.text, body.title)
        return JSONResponse(out, status_code=201 if out["created"] else 200)

    @app.delete("/users/{user}", response_model=Deleted, dependencies=write,
                responses=_errors(*write_errors, 503))
    def delete_user(user: Annotated[str, PathParam(min_length=1, max_length=MAX_ID)]) -> dict[str, Any]:
        """Delete a user's events and forget them (privacy)."""
        try:
            _storable(user)
        except ValueError as e:
            raise _HTTPError(422, f"user: {e}") from None
        return service.delete_user(user)

    @app.post("/run", response_model=SwapOut, dependencies=write, responses=_errors(*write_errors, 404, 409, 503))
    def swap(body: SwapIn) -> dict[str, Any]:
        """Switch to another run folder under the runs root (e.g. a retrain's) without
        dropping requests. The run must be of the served dataset."""
        return service.swap(body.run)

    @app.get("/users", response_model=Users, responses=_errors())
    def users(
        query: Annotated[str, Query(max_length=MAX_ID, description="part of a user id")] = "",
        limit: Annotated[int, Query(ge=1, le=MAX_K)] = 20,
    ) -> dict[str, Any]:
        """Users whose id contains ``query`` (ids starting with it first), for the web page."""
        return {"users": search_users(service.state, query, limit)}

    @app.get("/history", response_model=History, responses=_errors())
    def history(
        user: Annotated[str, Query(min_length=1, max_length=MAX_ID)],
        limit: Annotated[int, Query(ge=1, le=MAX_K)] = 50,
    ) -> dict[str, Any]:
        """A user's items: posted events first, then the run's, highest rated first."""
        return user_history(service.state, user, limit)

    @app.get("/popularity", response_model=Popularity, responses=_errors(404))
    def popularity(
        items: Annotated[str, Query(min_length=1, max_length=MAX_CANDIDATES * (MAX_ID + 1),
                                    description="comma-separated item ids")],
    ) -> dict[str, Any]:
        """Training interactions of items and whether each is in the long tail (outside
        the most-trained 20% of the run's items), for the web page's tail marks."""
        ids = [i for i in items.split(",") if i]
        if not ids or len(ids) > MAX_CANDIDATES:
            raise _HTTPError(422, f"items: between 1 and {MAX_CANDIDATES} item ids, got {len(ids)}")
        return item_popularity(service.state, ids)

    # the web page: static files shipped inside the package, no build step
    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", media_type="text/html")

    return app


#: The web page's files (package data).
WEB_DIR = Path(__file__).resolve().parents[1] / "web"
#: Swagger UI's files for ``/docs``, as the ``fastapi-offline`` package installs them.
SWAGGER_DIR = Path(str(resources.files("fastapi_offline") / "static"))


def _is_loopback(host: str | None) -> bool:
    """Whether the client address is this machine's (127.0.0.0/8, ::1, ::ffff:127.x)."""
    try:
        ip = ipaddress.ip_address(host or "")
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def _is_json(content_type: str) -> bool:
    kind = content_type.split(";", 1)[0].strip().lower()
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


def search_users(state: LiveState, query: str, limit: int) -> list[dict[str, Any]]:
    """``[{"user", "n_items"}]``: known and live users (not deleted) whose id contains
    ``query`` (case-insensitive), ids starting with it first, then in the run's order."""
    q = query.strip().lower()
    seen = state.run.seen()
    counts = np.diff(seen.indptr)  # (n_users,) interactions per run user
    prefix: list[tuple[str, int]] = []
    inner: list[tuple[str, int]] = []
    users = state.live_users()  # a copy: writers add users while this iterates
    live = {u: e for u, e in users.items() if u not in state.run.users}
    candidates = [(u, i) for i, u in enumerate(state.run.users.ids)] + [(u, None) for u in live]
    for user, i in candidates:
        if user in state.deleted and not len(state.user_entry(user).items):
            continue
        low = user.lower()
        if q and q not in low:
            continue
        entry = users.get(user)
        n = int(counts[i]) if i is not None and user not in state.deleted else 0
        if entry is not None:
            n = len(state.seen(entry))
        (prefix if low.startswith(q) else inner).append((user, n))
        if len(prefix) >= limit:
            break
    return [{"user": u, "n_items": n} for u, n in (prefix + inner)[:limit]]


def user_history(state: LiveState, user: str, limit: int) -> dict[str, Any]:
    """``{"user", "known", "items": [{"item", "title", "rating", "live"}]}``: items from
    posted events first, then the run's own, highest rated (then most recent) first."""
    cat = state.cat
    entry = state.user_entry(user)
    rows: list[dict[str, Any]] = []
    run_items: set[int] = set()
    if entry.index is not None:
        ranked = []
        split = state.run.split
        for part in ("train", "valid", "test", "support"):
            inter = getattr(split, part, None)
            if inter is None:
                continue
            mask = inter.users == entry.index
            items = inter.items[mask]
            ratings = None if inter.ratings is None else inter.ratings[mask]
            stamps = None if inter.timestamps is None else inter.timestamps[mask]
            for j, item in enumerate(items.tolist()):
                r = None if ratings is None else float(ratings[j])
                t = 0 if stamps is None else int(stamps[j])
                ranked.append((-(r or 0.0), -t, item, r))
        ranked.sort()
        for _, _, item, r in ranked:
            run_items.add(item)
            rows.append({"i": item, "rating": r, "live": False})
    live = [{"i": int(i), "rating": None, "live": True} for i in entry.items[::-1] if int(i) not in run_items]
    out = []
    for row in (live + rows)[:limit]:
        ext = cat.items.to_external([row["i"]])[0]
        out.append({"item": ext, "title": cat.titles.get(ext), "rating": row["rating"], "live": row["live"]})
    return {"user": user, "known": entry.index is not None or bool(len(entry.items)), "items": out}


def item_popularity(state: LiveState, ids: list[str]) -> dict[str, Any]:
    """``{"head_share", "head_min_interactions", "items": [{"item", "interactions", "tail"}]}``:
    the head is the top ``HEAD_SHARE`` of the run's items by training interactions, as
    ``semrec evaluate`` counts it (:func:`~semrec.evaluate.metrics.head_items`); an item
    posted to the service since has none and is in the tail."""
    cat = state.cat
    idx = cat.items.indices(ids)
    if (idx < 0).any():
        missing = [i for i, j in zip(ids, idx) if j < 0][:5]
        raise NotFound(f"items: unknown item id(s) {', '.join(missing)}")
    counts, head = state.item_counts(), state.head_items()
    rows = []
    for item, i in zip(ids, idx.tolist()):
        n = int(counts[i]) if i < len(counts) else 0
        rows.append({"item": item, "interactions": n, "tail": not (i < len(head) and bool(head[i]))})
    return {"head_share": HEAD_SHARE, "head_min_interactions": int(counts[head].min()), "items": rows}


class _HTTPError(Exception):
    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers
