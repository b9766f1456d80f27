"""New items from text, text-vs-behaviour explanations, retrain and run switching (semgraph)."""
import httpx

from semrec.artifacts.run import load_run
from semrec.serve.retrain import retrain


def ids(answer):
    return [x["item"] for x in answer["items"]]


def test_new_item_is_recommendable_at_once_and_explained(serve, semgraph_run):
    srv = serve(semgraph_run, token="t")
    auth = {"Authorization": "Bearer t"}
    text = "Starship pilots fight an alien armada near a distant space station"
    r = srv.client.post("/items", json={"item": "new-scifi", "text": text, "title": "Armada"}, headers=auth)
    assert r.status_code == 201 and r.json() == {"item": "new-scifi", "created": True}
    again = srv.client.post("/items", json={"item": "new-scifi", "text": text, "title": "Armada"}, headers=auth)
    assert again.status_code == 200 and again.json()["created"] is False
    clash = srv.client.post("/items", json={"item": "new-scifi", "text": "other"}, headers=auth)
    assert clash.status_code == 409
    sim = ids(srv.client.get("/similar", params={"item": "new-scifi", "k": 5}).json())
    assert sum(i.startswith("s") for i in sim) >= 4  # its neighbours are science fiction
    # a user who picks it gets science fiction next; the item itself is seen
    srv.client.post("/events", json={"user": "fan", "item": "new-scifi"}, headers=auth)
    recs = ids(srv.client.get("/recommend", params={"user": "fan", "k": 5}).json())
    assert "new-scifi" not in recs and sum(i.startswith("s") for i in recs) >= 4
    # and it is among the candidates any science-fiction user can get
    top = ids(srv.client.get("/recommend", params={"user": "u1", "k": 60}).json())
    assert "new-scifi" in top
    # re-ranking measures similarity on the run's item text, where the new item has no vector
    # (it counts as unlike every item); re-ranked requests still take it
    assert srv.service.state.item_space(srv.service.state.cat).name == "text"
    diverse = srv.client.get("/recommend", params={"user": "u1", "k": 60, "diversity": 0.5, "novelty": 1})
    assert diverse.status_code == 200 and sorted(ids(diverse.json())) == sorted(top)
    first = srv.client.get("/recommend", params={"user": "u1", "k": 5, "diversity": 0.9}).json()
    assert ids(first)[0] == top[0] and len(ids(first)) == 5
    e = srv.client.get("/explain", params={"user": "u1", "item": "new-scifi"}).json()
    assert e["text_share"] == 1.0 and "text alone" in e["sentence"]
    old = srv.client.get("/explain", params={"user": "u1", "item": "s3"}).json()
    assert 0.0 < old["text_share"] < 1.0
    assert abs(old["text_share"] + old["behaviour_share"] - 1.0) < 1e-9
    assert f"{old['text_share']:.0%} from its text" in old["sentence"]


def test_retrain_warm_starts_and_the_service_switches_runs(serve, semgraph_run, tmp_path):
    srv = serve(semgraph_run)
    srv.client.post("/items", json={"item": "n1", "text": "Lovers meet at a wedding in Paris"})
    srv.client.post("/events", json={"events": [{"user": "late", "item": i} for i in ("r1", "r2", "n1")]})
    srv.client.delete("/users/u0")
    out = tmp_path / "retrained"
    summary = retrain(semgraph_run, out, sets=["epochs=1", "progress=false"])
    assert summary["new_users"] == 1 and summary["new_items"] == 1 and summary["deleted_users"] == 1
    old, new = load_run(semgraph_run), load_run(out)
    assert "late" in new.users and "u0" not in new.users and new.items.ids == old.items.ids + ["n1"]
    # the text adapter and gate were copied; an event after the retrain is replayed on top
    srv.client.post("/events", json={"user": "after", "item": "s1"})
    r = srv.client.post("/run", json={"run": str(out)})
    assert r.status_code == 200 and r.json()["run"] == str(out)
    health = srv.client.get("/health").json()
    assert health["run"] == str(out) and health["n_items"] == len(new.items)
    # "after" alone: the rest, and u0's deletion, are inside the new run (not replayed again)
    assert health["live_users"] == 1
    gone = srv.client.get("/recommend", params={"user": "u0", "k": 3}).json()
    assert gone == srv.client.get("/recommend", params={"user": "never-seen", "k": 3}).json() | {"user": "u0"}
    late = ids(srv.client.get("/recommend", params={"user": "late", "k": 5}).json())
    assert not {"r1", "r2", "n1"} & set(late)
    with httpx.Client(base_url=srv.url) as c:
        assert c.get("/recommend", params={"user": "after", "k": 3}).status_code == 200
