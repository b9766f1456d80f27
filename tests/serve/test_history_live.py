"""Serving a run whose users are encoded from their history (semgraph's transformer tower)."""
import json

from semrec.artifacts.run import load_run


def ids(answer):
    return [x["item"] for x in answer["items"]]


def scifi_share(items):
    return sum(i.startswith("s") for i in items) / max(len(items), 1)


def test_the_run_records_its_tower(transformer_run):
    run = load_run(transformer_run)
    assert run.model_config.user_tower == "transformer" and run.model_config.history == "sequence"
    assert run.scorer.ordered
    toml = (transformer_run / "config.toml").read_text()
    assert 'user_tower = "transformer"' in toml


def test_events_change_the_next_answer_through_the_tower(serve, transformer_run):
    srv = serve(transformer_run)
    before = ids(srv.client.get("/recommend", params={"user": "u0", "k": 5}).json())
    assert scifi_share(before) >= 0.8  # u0 read science fiction
    events = [{"user": "u0", "item": f"r{j}"} for j in (0, 7, 2, 9)]
    assert srv.client.post("/events", json={"events": events}).status_code == 200
    after = ids(srv.client.get("/recommend", params={"user": "u0", "k": 5}).json())
    assert scifi_share(after) <= 0.2  # the newest items lead: romance now
    assert not {"r0", "r7", "r2", "r9"} & set(after)
    # the same answer from a cold replay of the stored events (restart)
    srv2 = serve(transformer_run)
    assert ids(srv2.client.get("/recommend", params={"user": "u0", "k": 5}).json()) == after


def test_order_of_an_anonymous_history_matters(serve, transformer_run):
    srv = serve(transformer_run)
    romance_last = ids(srv.client.post("/recommend", json={"items": ["s1", "s2", "r3", "r4"], "k": 4}).json())
    scifi_last = ids(srv.client.post("/recommend", json={"items": ["r3", "r4", "s1", "s2"], "k": 4}).json())
    assert romance_last != scifi_last
    assert scifi_share(scifi_last) > scifi_share(romance_last)


def test_a_new_item_is_recommended_at_once_to_a_user_whose_recent_history_matches_it(serve, transformer_run):
    srv = serve(transformer_run)
    text = "Two rival chefs fall in love in a small Paris bakery"
    assert srv.client.post("/items", json={"item": "new-romance", "text": text}).status_code == 201
    srv.client.post("/events", json={"events": [{"user": "u1", "item": i} for i in ("r1", "r4")]})
    top = ids(srv.client.get("/recommend", params={"user": "u1", "k": 10}).json())
    assert "new-romance" in top
    assert all(i.startswith("r") or i == "new-romance" for i in top[: top.index("new-romance") + 1])


def test_explanations_name_the_past_items_behind_the_served_score(serve, transformer_run):
    srv = serve(transformer_run)
    srv.client.post("/events", json={"events": [{"user": "fan", "item": i} for i in ("s1", "r2", "s4")]})
    rec = srv.client.get("/recommend", params={"user": "fan", "k": 1}).json()["items"][0]
    e = srv.client.get("/explain", params={"user": "fan", "item": rec["item"]}).json()
    assert abs(e["score"] - rec["score"]) < 1e-4  # the explained score is the served one
    assert e["because"] and {b["item"] for b in e["because"]} <= {"s1", "r2", "s4"}
    assert abs(sum(b["share"] for b in e["because"]) - 1.0) < 1e-6 or len(e["because"]) == 3
    assert 0.0 <= e["text_share"] <= 1.0
    json.dumps(e)
