"""The graph filters through the pipeline, a run folder and the live service."""
import numpy as np
import pytest

from semrec.artifacts.run import load_run
from semrec.errors import SemrecError
from semrec.pipeline import build_config, train_and_save


@pytest.fixture(scope="module")
def text_run(tastes, tmp_path_factory, train_run):
    return train_run(tastes, "graphfilter-text", tmp_path_factory.mktemp("runs") / "gft", ["k=16", "text_k=5"])


def test_a_run_folder_scores_as_the_fitted_model(text_run):
    run = load_run(text_run)
    users = np.arange(len(run.users))
    history = run.seen()
    again = load_run(text_run).scorer.score(users, history)
    np.testing.assert_array_equal(run.scorer.score(users, history).numpy(), again.numpy())
    assert run.model.config.text_k == 5 and run.model.item_emb.shape[0] == len(run.items)


def test_events_change_the_next_answer_and_new_items_are_refused(text_run, tmp_path):
    import shutil

    from semrec.serve.service import Service
    from semrec.serve.store import Event

    service = Service(shutil.copytree(text_run, tmp_path / "run"), poll=0)
    try:
        assert [r["item"] for r in service.state.recommend("newbie", 3)] == \
            [r["item"] for r in service.state.recommend("nobody-else", 3)]  # popularity
        service.post_events([Event("newbie", i) for i in ("r1", "r2", "r3")])
        fresh = [r["item"] for r in service.state.recommend("newbie", 5)]
        assert all(i.startswith("r") for i in fresh) and not {"r1", "r2", "r3"} & set(fresh)
        service.post_events([Event("newbie", i) for i in ("s1", "s2", "s3", "s4", "s5", "s6")])
        assert [r["item"] for r in service.state.recommend("newbie", 5)] != fresh
        with pytest.raises(SemrecError, match="cannot add items without retraining"):
            service.post_item("brand-new", "A starship crew meets a comet", "Comet")
    finally:
        service.close()


def test_text_reaches_cold_items_the_interactions_cannot(tastes, tmp_path):
    cold = {}
    for name in ("graphfilter", "graphfilter-text"):
        config = build_config(name, split="cold-items:0.2", sets=["progress=false", "k=16", "text_k=5"]
                              if name.endswith("text") else ["progress=false", "k=16"])
        cold[name] = train_and_save(str(tastes), config, tmp_path / name).metrics["cold"]["ndcg@10"]
    assert cold["graphfilter-text"] > cold["graphfilter"] + 0.1
