"""The page's files and its JSON helpers (/users, /history), without a browser."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


@pytest.fixture
def client(mf_web_run, tmp_path):
    from semrec.serve.api import create_app
    from semrec.serve.live import Service

    service = Service(mf_web_run, f"sqlite:///{tmp_path / 'events.sqlite'}")
    with TestClient(create_app(service, token="secret")) as c:
        yield c
    service.close()


def test_page_and_static_files(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<label for="user-query">' in page.text and "/static/app.js" in page.text
    # the re-ranking knobs, labelled
    assert '<label for="diversity">Diversity</label>' in page.text and 'id="diversity" name="diversity" type="range"' in page.text
    assert '<label for="novelty" class="inline">Less popular</label>' in page.text
    for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and kind in r.headers["content-type"]
    assert client.get("/static/missing.js").status_code == 404


def test_users_search_prefix_first(client):
    users = client.get("/users", params={"query": "u1", "limit": 5}).json()["users"]
    assert users[0] == {"user": "u1", "n_items": 8}
    assert all(u["user"].startswith("u1") for u in users)
    assert len(client.get("/users", params={"query": "", "limit": 7}).json()["users"]) == 7
    assert client.get("/users", params={"query": "nobody"}).json() == {"users": []}
    assert client.get("/users", params={"limit": 0}).status_code == 422


def test_history_shows_run_then_posted_events(client):
    h = client.get("/history", params={"user": "u1"}).json()
    assert h["known"] and len(h["items"]) == 8
    assert all(it["title"].endswith(f"({it['item']})") and not it["live"] for it in h["items"])
    # posting a romance to a science-fiction user puts it first, marked live
    auth = {"Authorization": "Bearer secret"}
    assert client.post("/events", json={"user": "u1", "item": "r0"}, headers=auth).status_code == 200
    h = client.get("/history", params={"user": "u1"}).json()
    assert h["items"][0] == {"item": "r0", "title": "Two strangers fall in love in Paris (r0)",
                             "rating": None, "live": True}
    assert len(h["items"]) == 9
    assert client.get("/users", params={"query": "u1"}).json()["users"][0]["n_items"] == 9
    # a new user exists once they have an event; a stranger has no history
    client.post("/events", json={"user": "newcomer", "item": "s1"}, headers=auth)
    assert client.get("/users", params={"query": "newc"}).json()["users"] == [{"user": "newcomer", "n_items": 1}]
    assert client.get("/history", params={"user": "stranger"}).json() == {"user": "stranger", "known": False,
                                                                          "items": []}
    # a deleted user is gone from the search
    client.delete("/users/u1", headers=auth)
    assert "u1" not in [u["user"] for u in client.get("/users", params={"query": "u1"}).json()["users"]]
