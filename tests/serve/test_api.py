"""The HTTP API over real HTTP on loopback (uvicorn in a thread), MF run, SQLite store."""
import json
from concurrent.futures import ThreadPoolExecutor
from uuid import uuid4

import httpx
import pytest

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
               {"user": "üser/ß&=", "k": 2}, {"user": "u1", "k": "007"}]
    for params in queries:
        a, b = fast.client.get("/recommend", params=params), slow.client.get("/recommend", params=params)
        assert a.status_code == b.status_code == 200
        assert a.content == b.content and a.headers["content-type"] == b.headers["content-type"]
    # what the fast path does not answer plainly still gets FastAPI's answer and errors
    for raw in ("user=u1&k=0", "user=u1&k=-1", "user=u1&k=1e3", "k=3", "user=u1&user=u2", "user=u1&x=1",
                "user=u2&candidates=s3,s4", "user=&k=3", "user=u1&k="):
        a, b = fast.client.get(f"/recommend?{raw}"), slow.client.get(f"/recommend?{raw}")
        assert (a.status_code, a.content) == (b.status_code, b.content), raw


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
