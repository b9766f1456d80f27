"""The HTTP API over real HTTP on loopback (uvicorn in a thread), MF run, SQLite store."""
import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from uuid import uuid4

import httpx
import numpy as np
import pytest

from semrec.models.rerank import ItemSpace, rerank
from semrec.serve.api import MAX_BODY, MAX_K
from semrec.serve.store import EventStore


def ids(answer):
    return [x["item"] for x in answer["items"]]


def test_recommendations_have_the_cli_shape_and_values(serve, mf_run, run_cli):
    srv = serve(mf_run)
    got = srv.client.get("/recommend", params={"user": "u3", "k": 5})
    assert got.status_code == 200
    code, out, _ = run_cli("recommend", str(mf_run), "--user", "u3", "-k", "5", "--json")
    assert code == 0
    cli = json.loads(out)
    body = got.json()
    assert set(body) == {"user", "items"} and body["user"] == "u3"
    assert ids(body) == ids(cli)
    assert [set(x) for x in body["items"]] == [{"item", "score", "title"}] * 5
    for a, b in zip(body["items"], cli["items"]):
        assert a["score"] == pytest.approx(b["score"], rel=1e-4) and a["title"] == b["title"]
    assert all(i.startswith("s") for i in ids(body))  # u3 is a science-fiction user


def test_the_fast_read_path_answers_byte_for_byte_as_fastapi(serve, mf_run, tmp_path):
    fast = serve(mf_run, f"sqlite:///{tmp_path / 'fast.sqlite'}")
    slow = serve(mf_run, f"sqlite:///{tmp_path / 'slow.sqlite'}", fast_reads=False)
    queries = [{"user": "u3"}, {"user": "u3", "k": 1}, {"user": "u2", "k": MAX_K}, {"user": "nobody", "k": 4},
               {"user": "üser/ß&=", "k": 2}, {"user": "u1", "k": "007"},
               {"user": "u3", "diversity": "0.5"}, {"user": "u3", "k": 3, "novelty": "1", "diversity": "0.25"},
               {"user": "nobody", "novelty": "10"}, {"user": "u1", "diversity": "0", "novelty": "0.0"},
               {"user": "u2", "k": 50, "diversity": "1"}]
    for params in queries:
        a, b = fast.client.get("/recommend", params=params), slow.client.get("/recommend", params=params)
        assert a.status_code == b.status_code == 200
        assert a.content == b.content and a.headers["content-type"] == b.headers["content-type"]
    # what the fast path does not answer plainly still gets FastAPI's answer and errors
    for raw in ("user=u1&k=0", "user=u1&k=-1", "user=u1&k=1e3", "k=3", "user=u1&user=u2", "user=u1&x=1",
                "user=u2&candidates=s3,s4", "user=&k=3", "user=u1&k=",
                "user=u1&diversity=2", "user=u1&diversity=nan", "user=u1&diversity=1e-1", "user=u1&novelty=-1",
                "user=u1&novelty=10.5", "user=u1&diversity=", "user=u1&diversity=.5", "user=u1&diversity=0.5&diversity=1"):
        a, b = fast.client.get(f"/recommend?{raw}"), slow.client.get(f"/recommend?{raw}")
        assert (a.status_code, a.content) == (b.status_code, b.content), raw


def test_reranked_recommendations_rerank_the_pool(serve, mf_run):
    """GET /recommend with diversity / novelty answers what re-ranking the plain pool gives."""
    srv = serve(mf_run)
    state = srv.service.state
    space = ItemSpace("learned", state.cat.index.vectors)  # MF: the learned item vectors
    counts = np.bincount(state.run.split.train.items, minlength=len(state.run.items))
    n_items = len(state.run.items)
    for user in ("u3", "u40", "nobody"):
        plain = srv.client.get("/recommend", params={"user": user, "k": n_items}).json()["items"]  # the pool
        pool_ids = np.asarray(state.cat.items.indices([x["item"] for x in plain]))
        pool_scores = np.array([[x["score"] for x in plain]])
        for lam, beta in ((0.5, 0.0), (0.0, 1.0), (0.3, 0.5)):
            got = srv.client.get("/recommend", params={"user": user, "k": 5, "diversity": lam, "novelty": beta})
            assert got.status_code == 200 and set(got.json()) == {"user", "items"}
            _, want = rerank(pool_scores, pool_ids[None, :], 5, diversity=lam, novelty=beta, space=space,
                             counts=counts)
            assert ids(got.json()) == state.cat.items.to_external(want[0].tolist()), (user, lam, beta)
            scores = {x["item"]: x["score"] for x in plain}
            assert all(x["score"] == pytest.approx(scores[x["item"]], rel=1e-6) for x in got.json()["items"])
    assert srv.client.get("/recommend", params={"user": "u3", "diversity": 1.5}).status_code == 422
    bad = srv.client.get("/recommend", params={"user": "u3", "novelty": "inf"})
    assert bad.status_code == 422 and "novelty" in bad.json()["detail"]


def test_post_recommend_takes_diversity_and_novelty(serve, mf_run):
    srv = serve(mf_run)
    body = {"items": ["s1", "s2"], "k": 5}
    plain = srv.client.post("/recommend", json=body).json()
    diverse = srv.client.post("/recommend", json={**body, "diversity": 1.0}).json()
    assert set(diverse) == {"user", "items"} and diverse["user"] is None and len(diverse["items"]) == 5
    assert ids(diverse)[0] == ids(plain)[0] and ids(diverse) != ids(plain)
    assert not {"s1", "s2"} & set(ids(diverse))
    again = srv.client.post("/recommend", json={**body, "diversity": 0, "novelty": 0}).json()
    assert again == plain
    bad = srv.client.post("/recommend", json={**body, "novelty": -1})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "novelty"


def test_popularity_marks_the_long_tail(serve, mf_run):
    srv = serve(mf_run)
    state = srv.service.state
    counts = np.bincount(state.run.split.train.items, minlength=len(state.run.items))
    ids_all = state.run.items.ids
    got = srv.client.get("/popularity", params={"items": ",".join(ids_all)}).json()
    assert got["head_share"] == 0.2
    rows = {r["item"]: r for r in got["items"]}
    assert [rows[i]["interactions"] for i in ids_all] == counts.tolist()
    n_head = sum(not r["tail"] for r in got["items"])
    assert n_head == math.ceil(0.2 * len(ids_all))
    assert min(r["interactions"] for r in got["items"] if not r["tail"]) == got["head_min_interactions"]
    assert max(r["interactions"] for r in got["items"] if r["tail"]) <= got["head_min_interactions"]
    assert srv.client.get("/popularity", params={"items": "s1,nope"}).status_code == 404
    assert srv.client.get("/popularity", params={"items": ","}).status_code == 422


def test_unknown_user_gets_popular_items_not_an_error(serve, mf_run):
    srv = serve(mf_run)
    body = srv.client.get("/recommend", params={"user": "nobody", "k": 3}).json()
    assert body["user"] == "nobody" and len(body["items"]) == 3
    scores = [x["score"] for x in body["items"]]
    assert scores == sorted(scores, reverse=True) and scores[0] >= 1  # training counts


def test_an_event_changes_the_next_recommendation(serve, mf_run):
    srv = serve(mf_run)
    before = ids(srv.client.get("/recommend", params={"user": "u3", "k": 5}).json())
    r = srv.client.post("/events", json={"user": "u3", "item": before[0], "key": uuid4().hex})
    assert r.status_code == 200 and r.json() == {"received": 1, "stored": 1, "duplicates": 0}
    after = ids(srv.client.get("/recommend", params={"user": "u3", "k": 5}).json())
    assert before[0] not in after and after != before
    # a brand-new user with romance events is recommended romances, no longer popularity
    srv.client.post("/events", json={"events": [{"user": "newbie", "item": i} for i in ("r1", "r2", "r3")]})
    fresh = ids(srv.client.get("/recommend", params={"user": "newbie", "k": 5}).json())
    assert all(i.startswith("r") for i in fresh) and not {"r1", "r2", "r3"} & set(fresh)


def test_concurrent_posts_store_every_event_exactly_once(serve, mf_run):
    srv = serve(mf_run)
    keys = [uuid4().hex for _ in range(120)]
    items = [f"{'s' if j % 2 else 'r'}{j % 18}" for j in range(120)]

    def post(j: int) -> int:
        # every event is posted twice (a client retry): the key makes the second a no-op
        with httpx.Client(base_url=srv.url, timeout=30) as c:
            body = {"user": f"c{j % 7}", "item": items[j], "key": keys[j]}
            a = c.post("/events", json=body)
            b = c.post("/events", json={"events": [body]})
            assert a.status_code == b.status_code == 200
            return a.json()["stored"] + b.json()["stored"]

    with ThreadPoolExecutor(8) as pool:
        stored = sum(pool.map(post, range(120)))
    assert stored == 120
    store = srv.service.store
    assert store.count_events() == 120
    assert all(store.count_events(key=k) == 1 for k in keys)
    assert srv.client.get("/health").json()["live_users"] == 7


def test_deleted_user_is_forgotten(serve, mf_run):
    srv = serve(mf_run)
    personal = ids(srv.client.get("/recommend", params={"user": "u40", "k": 5}).json())
    srv.client.post("/events", json={"user": "u40", "item": "r0", "key": uuid4().hex})
    r = srv.client.delete("/users/u40")
    assert r.status_code == 200 and r.json() == {"user": "u40", "events_deleted": 1, "known": True}
    assert srv.service.store.count_events() == 0
    after = srv.client.get("/recommend", params={"user": "u40", "k": 5}).json()
    popular = srv.client.get("/recommend", params={"user": "never-seen", "k": 5}).json()
    assert ids(after) == ids(popular) and ids(after) != personal
    explained = srv.client.get("/explain", params={"user": "u40", "item": "r1"}).json()
    assert explained["because"] == [] and explained["known_user"] is False


def test_the_explain_command_answers_as_the_endpoint(serve, mf_run, run_cli):
    srv = serve(mf_run)
    api = srv.client.get("/explain", params={"user": "u2", "item": "s9"}).json()
    code, out, _ = run_cli("explain", str(mf_run), "--user", "u2", "--item", "s9", "--json")
    assert code == 0 and json.loads(out) == api
    code, out, _ = run_cli("explain", str(mf_run), "--user", "u2", "--item", "s9")
    assert code == 0 and out.splitlines()[0] == api["sentence"]
    assert f"[{api['because'][0]['item']}]" in out


def test_similar_explain_and_anonymous(serve, mf_run):
    srv = serve(mf_run)
    sim = srv.client.get("/similar", params={"item": "s1", "k": 5}).json()
    assert sim["item"] == "s1" and "s1" not in ids(sim)
    assert sum(i.startswith("s") for i in ids(sim)) >= 4
    e = srv.client.get("/explain", params={"user": "u2", "item": "s9"}).json()
    assert e["user"] == "u2" and e["item"] == "s9" and e["because"]
    assert all(b["item"].startswith("s") for b in e["because"][:2])
    assert e["text_share"] == 0.0 and e["behaviour_share"] == 1.0  # MF has no text
    assert "recommended to user u2 mainly because of" in e["sentence"]
    anon = srv.client.post("/recommend", json={"items": ["r1", "r4"], "k": 4}).json()
    assert anon["user"] is None and all(i.startswith("r") for i in ids(anon))
    assert not {"r1", "r4"} & set(ids(anon))
    only = srv.client.get("/recommend", params={"user": "u2", "k": 5, "candidates": "r1,s3,s4"}).json()
    assert set(ids(only)) <= {"r1", "s3", "s4"} and len(ids(only)) <= 3
    cat = srv.client.get("/recommend", params={"user": "u2", "k": 30, "category": "genres:Romance"}).json()
    assert cat["items"] and all(i.startswith("r") for i in ids(cat))


@pytest.mark.parametrize("method,path,kwargs,status,needle", [
    ("get", "/recommend", {"params": {"user": "u1", "k": 0}}, 422, "k:"),
    ("get", "/recommend", {"params": {"user": "u1", "k": MAX_K + 1}}, 422, "k:"),
    ("get", "/recommend", {"params": {"k": 3}}, 422, "user: Field required"),
    ("get", "/recommend", {"params": {"user": "u1", "candidates": "nope"}}, 404, "unknown item id(s) nope"),
    ("get", "/recommend", {"params": {"user": "u1", "category": "genres"}}, 422, "COLUMN:VALUE"),
    ("get", "/recommend", {"params": {"user": "u1", "category": "brand:x"}}, 422, "category column 'brand'"),
    ("get", "/similar", {"params": {"item": "zzz"}}, 404, "unknown item 'zzz'"),
    ("get", "/explain", {"params": {"user": "u1"}}, 422, "item: Field required"),
    ("post", "/events", {"json": {"user": "u1"}}, 422, "item: Field required"),
    ("post", "/events", {"json": {"user": "u1", "item": "s1", "rating": "high"}}, 422, "rating"),
    ("post", "/events", {"json": {"user": "u1", "item": "s1", "timestamp": -5}}, 422, "timestamp"),
    ("post", "/events", {"json": {"user": "u1", "item": "s1", "colour": "red"}}, 422, "colour"),
    ("post", "/events", {"json": {"user": "u1", "item": "unknown-item"}}, 404, "post new items to /items"),
    ("post", "/events", {"json": {"events": []}}, 422, "events"),
    ("post", "/events", {"json": {"events": [{"user": "u", "item": "s1"}] * 10_001}}, 422, "events"),
    ("post", "/events", {"content": b"{not json", "headers": {"content-type": "application/json"}}, 422, "JSON"),
    ("post", "/events", {"content": b"x" * (MAX_BODY + 1)}, 413, "larger than"),
    ("post", "/items", {"json": {"item": "s1", "text": "already known"}}, 409, "already in the run"),
    ("post", "/items", {"json": {"item": "n1", "text": "a text"}}, 422, "cannot embed a new item"),
    ("post", "/recommend", {"json": {"items": ["nope"]}}, 404, "unknown item id(s) nope"),
    ("post", "/recommend", {"json": {"text": "space"}}, 422, "free-text queries need a text model"),
])
def test_bad_requests_get_4xx_with_a_message(serve, mf_run, method, path, kwargs, status, needle):
    srv = serve(mf_run)
    r = getattr(srv.client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    assert needle in r.json()["detail"]


def test_write_endpoints_need_the_token(serve, mf_run):
    srv = serve(mf_run, token="s3cret")
    event = {"user": "u1", "item": "s1"}
    assert srv.client.post("/events", json=event).status_code == 401
    bad = srv.client.post("/events", json=event, headers={"Authorization": "Bearer wrong"})
    assert bad.status_code == 401 and "bearer token" in bad.json()["detail"]
    assert srv.client.delete("/users/u1").status_code == 401
    ok = srv.client.post("/events", json=event, headers={"Authorization": "Bearer s3cret"})
    assert ok.status_code == 200
    assert srv.client.get("/recommend", params={"user": "u1"}).status_code == 200  # reads stay open
    assert EventStore(srv.service.store_url).count_events() == 1


def test_openapi_schema_describes_the_endpoints(serve, mf_run):
    srv = serve(mf_run)
    schema = srv.client.get("/openapi.json").json()
    for path in ("/recommend", "/similar", "/explain", "/events", "/items", "/users/{user}", "/health"):
        assert path in schema["paths"]
    assert {"EventIn", "EventBatch", "Recommendations"} <= set(schema["components"]["schemas"])


# --------------------------------------------------------------------------- #20: no 500, no open door


def test_a_timestamp_beyond_year_9999_is_a_422_not_a_500(serve, mf_run):
    srv = serve(mf_run)
    r = srv.client.post("/events", json={"user": "u1", "item": "s1", "timestamp": 2**63})
    assert r.status_code == 422 and "timestamp" in r.json()["detail"]
    r = srv.client.post("/events", json={"user": "u1", "item": "s1", "rating": 1e300})
    assert r.status_code == 422 and "rating" in r.json()["detail"]
    for bad in ("nul\x00id", "lone \ud800 surrogate"):
        r = srv.client.post("/events", content=json.dumps({"user": bad, "item": "s1"}),
                            headers={"content-type": "application/json"})
        assert r.status_code == 422 and "user" in r.json()["detail"], r.text
    assert srv.client.delete("/users/a%00b").status_code == 422
    assert srv.service.store.count_events() == 0


def test_a_chunked_body_over_the_limit_gets_413(serve, mf_run):
    srv = serve(mf_run)

    def chunks():  # no Content-Length: the body streams in chunks
        for _ in range(10):
            yield b"x" * (1024 * 1024)

    r = srv.client.post("/events", content=chunks(), headers={"content-type": "application/json"})
    assert r.status_code == 413 and "larger than" in r.json()["detail"]
    ok = srv.client.post("/events", content=iter([b'{"user": "u1", ', b'"item": "s1"}']),
                         headers={"content-type": "application/json"})
    assert ok.status_code == 200 and ok.json()["stored"] == 1


def test_a_form_content_type_gets_a_422_that_says_to_send_json(serve, mf_run):
    srv = serve(mf_run)
    # what `curl -X POST URL -d '{...}'` sends
    r = srv.client.post("/events", content=b'{"user": "42", "item": "s1"}',
                        headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 422
    assert "Content-Type: application/json" in r.json()["detail"]
    assert "application/x-www-form-urlencoded" in r.json()["detail"]


def _schema_of(schema, path, method, status):
    op = schema["paths"][path][method]
    ref = op["responses"][str(status)]["content"]["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


@pytest.mark.parametrize("method,path,template,kwargs,status", [
    ("get", "/recommend", "/recommend", {"params": {"user": "u1", "k": 0}}, 422),
    ("get", "/recommend", "/recommend", {"params": {"user": "u1", "candidates": "nope"}}, 404),
    ("get", "/similar", "/similar", {"params": {"item": "zzz"}}, 404),
    ("post", "/events", "/events", {"json": {"user": "u1", "item": "unknown-item"}}, 404),
    ("post", "/events", "/events", {"json": {"user": "u1"}}, 422),
    ("post", "/events", "/events", {"content": b"x" * (MAX_BODY + 1)}, 413),
    ("post", "/items", "/items", {"json": {"item": "s1", "text": "already known"}}, 409),
    ("post", "/run", "/run", {"json": {"run": "no-such-run"}}, 404),
    ("delete", "/users/u1", "/users/{user}", {"headers": {"x-forwarded-for": "203.0.113.7"}}, 403),
])
def test_error_bodies_are_what_the_schema_documents(serve, mf_run, method, path, template, kwargs, status):
    srv = serve(mf_run)
    schema = srv.client.get("/openapi.json").json()
    r = getattr(srv.client, method)(path, **kwargs)
    assert r.status_code == status, r.text
    documented = _schema_of(schema, template, method, status)
    body = r.json()
    assert set(body) <= set(documented["properties"]) and set(documented["required"]) <= set(body)
    assert isinstance(body["detail"], str) and body["detail"]
    for e in body.get("errors") or []:
        assert set(e) == {"field", "message"}


def test_docs_work_offline(serve, mf_run):
    """/docs used to load Swagger UI from a CDN: a blank page without internet."""
    import re

    srv = serve(mf_run)
    page = srv.client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)["']""", page.text) + re.findall(r"url: *'([^']+)'", page.text)
    assert urls and not [u for u in urls if "//" in u]  # nothing from another host
    for u in urls:
        got = srv.client.get(u)
        assert got.status_code == 200, u
    js = [u for u in urls if u.endswith(".js")]
    assert js and len(srv.client.get(js[0]).content) > 100_000  # the real Swagger UI bundle


def test_without_a_token_writes_answer_this_machine_only(serve, mf_run):
    """A schemathesis run once deleted every user of a served run: writes were open to all."""
    srv = serve(mf_run)
    far = {"x-forwarded-for": "203.0.113.7"}  # how a client seen through a local proxy arrives
    for method, path, kwargs in (("post", "/events", {"json": {"user": "u1", "item": "s1"}}),
                                 ("delete", "/users/u1", {}),
                                 ("post", "/run", {"json": {"run": str(mf_run)}})):
        r = getattr(srv.client, method)(path, headers=far, **kwargs)
        assert r.status_code == 403 and "--token" in r.json()["detail"], (path, r.text)
    assert srv.client.get("/recommend", params={"user": "u1"}, headers=far).status_code == 200
    assert srv.service.store.count_events() == 0 and srv.service.state.user_entry("u1").index is not None
    assert srv.client.post("/events", json={"user": "u1", "item": "s1"}).status_code == 200  # loopback


def test_open_writes_and_tokens_are_explicit(serve, mf_run, tmp_path):
    far = {"x-forwarded-for": "203.0.113.7"}
    srv = serve(mf_run, token="s3cret")
    r = srv.client.post("/events", json={"user": "u1", "item": "s1"}, headers=far)
    assert r.status_code == 401  # a token: asked of everyone, near or far
    r = srv.client.post("/events", json={"user": "u1", "item": "s1"}, headers={**far, "Authorization": "Bearer s3cret"})
    assert r.status_code == 200
    opened = serve(mf_run, f"sqlite:///{tmp_path / 'open.sqlite'}", open_writes=True)  # --insecure
    assert opened.client.post("/events", json={"user": "u2", "item": "s1"}, headers=far).status_code == 200


# --------------------------------------------------------------------------- POST /run


def _copy_run(src, dst, edit=None):
    import shutil

    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("events.sqlite*", "tensorboard"))
    if edit is not None:
        info = json.loads((dst / "run.json").read_text())
        edit(info)
        (dst / "run.json").write_text(json.dumps(info))
    return dst


def test_run_switches_stay_inside_the_runs_root_and_say_nothing_about_the_rest(serve, mf_run, tmp_path_factory):
    srv = serve(mf_run)  # runs root: the run's parent
    elsewhere = _copy_run(mf_run, tmp_path_factory.mktemp("elsewhere") / "run")
    # outside the root, missing, not a run, a way out through '..': one answer, whatever exists
    for path in (elsewhere, elsewhere.parent / "missing", Path("/etc"), mf_run.parent / ".." / "elsewhere0" / "run"):
        r = srv.client.post("/run", json={"run": str(path)})
        assert (r.status_code, r.json()) == (404, {"detail": f"run: no run folder '{path}' under this server's runs root"})
    assert srv.client.get("/health").json()["run"] == str(mf_run)
    sibling = _copy_run(mf_run, mf_run.parent / "sibling")
    ok = srv.client.post("/run", json={"run": "sibling"})  # a name under the root
    assert ok.status_code == 200 and ok.json()["run"] == str(sibling)


@pytest.mark.parametrize("file,content", [
    ("run.json", b"[]"),
    ("ids.json", b"\xff\xfe\xfa not utf-8"),
    ("model.safetensors", b"garbage"),
    ("embeddings.safetensors", b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":1}         "),
])
def test_a_damaged_run_is_a_422_not_a_500(serve, mf_run, file, content):
    srv = serve(mf_run)
    broken = _copy_run(mf_run, mf_run.parent / "broken")
    (broken / file).write_bytes(content)
    r = srv.client.post("/run", json={"run": "broken"})
    assert r.status_code == 422 and file in r.json()["detail"], r.text
    assert srv.client.get("/recommend", params={"user": "u1"}).status_code == 200


def test_a_run_of_another_dataset_cannot_take_over_the_store(serve, mf_run, books, train_run):
    """Its items share no meaning with the events in the store (a user's Star Wars
    became a monitor stand)."""
    srv = serve(mf_run)
    srv.client.post("/events", json={"user": "u1", "item": "s1"})
    train_run(books, "popularity", mf_run.parent / "books", [])
    r = srv.client.post("/run", json={"run": "books"})
    assert r.status_code == 409 and "trained on dataset" in r.json()["detail"]
    assert srv.client.get("/health").json()["run"] == str(mf_run)
    # runs from before fingerprints: the dataset name and the titles of shared items decide
    old = _copy_run(mf_run, mf_run.parent / "old", edit=lambda info: info["dataset"].pop("fingerprint"))
    assert srv.client.post("/run", json={"run": old.name}).status_code == 200
    retitled = _copy_run(mf_run, mf_run.parent / "retitled", edit=lambda info: info["dataset"].pop("fingerprint"))
    (retitled / "titles.json").write_text(json.dumps({"s1": "A monitor stand"}))
    assert srv.client.post("/run", json={"run": retitled.name}).status_code == 409


def test_a_switched_run_may_not_name_other_folders(serve, mf_run):
    srv = serve(mf_run)
    probe = _copy_run(mf_run, mf_run.parent / "probe", edit=lambda info: info["dataset"].update(path="/etc"))
    r = srv.client.post("/run", json={"run": probe.name})
    assert r.status_code == 409 and "dataset folder" in r.json()["detail"]
    enc = _copy_run(mf_run, mf_run.parent / "enc")
    (enc / "config.toml").write_text((enc / "config.toml").read_text() + '\n[text]\nencoder = "/root"\n')
    r = srv.client.post("/run", json={"run": enc.name})
    assert r.status_code == 409 and "text encoder" in r.json()["detail"]
    assert srv.client.get("/health").json()["run"] == str(mf_run)


def test_a_run_switch_needs_the_token_when_there_is_one(serve, mf_run):
    srv = serve(mf_run, token="t")
    _copy_run(mf_run, mf_run.parent / "next")
    assert srv.client.post("/run", json={"run": "next"}).status_code == 401
    r = srv.client.post("/run", json={"run": "next"}, headers={"Authorization": "Bearer t"})
    assert r.status_code == 200


# --------------------------------------------------------------------------- the event loop


def test_the_first_category_request_does_not_block_other_requests(serve, mf_run, monkeypatch):
    """Reading the dataset for categories ran on the event loop: every request waited."""
    import threading

    import semrec.data.load as load

    real, release = load.load_dataset, threading.Event()

    def slow_load(*args, **kwargs):
        release.wait(timeout=60)
        return real(*args, **kwargs)

    monkeypatch.setattr(load, "load_dataset", slow_load)
    srv = serve(mf_run)
    answers = []
    first = threading.Thread(target=lambda: answers.append(
        httpx.get(f"{srv.url}/recommend", params={"user": "u2", "k": 5, "category": "genres:Romance"},
                  timeout=90)))
    first.start()
    try:
        health = httpx.get(f"{srv.url}/health", timeout=10)  # answered while the dataset loads
        assert health.status_code == 200 and first.is_alive()
    finally:
        release.set()
        first.join(timeout=90)
    assert answers[0].status_code == 200 and all(i.startswith("r") for i in ids(answers[0].json()))
