"""Shared fixtures. Real datasets are reached through SEMREC_DATA_HOME (../shared/data)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

# Tests run on tiny tensors, two xdist workers on two cores: one thread per worker
# avoids oversubscription, which makes small ops orders of magnitude slower.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("SEMREC_DATA_HOME", str(REPO.parent / "shared" / "data"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# embeddings cached by tests stay out of the user's cache (one folder per test process)
os.environ.setdefault("SEMREC_CACHE", tempfile.mkdtemp(prefix="semrec-test-cache-"))


@pytest.fixture(scope="session")
def data_home() -> Path:
    home = Path(os.environ["SEMREC_DATA_HOME"])
    if not (home / "ml-100k" / "u.data").is_file():
        pytest.fail(f"real datasets not found under SEMREC_DATA_HOME={home}")
    return home


def community_split(n_users: int = 40, n_items: int = 30, seed: int = 0):
    """Two communities with a known answer: users < n_users/2 like items < n_items/2 and
    the rest like the rest. Each user has 6 train, 1 valid and 2 test items from their
    community; one very popular item of community B is liked by everyone, so popularity
    alone ranks it first for every user."""
    import numpy as np

    from semrec.data.dataset import Interactions
    from semrec.data.idmap import IdMap
    from semrec.data.split import Split

    rng = np.random.default_rng(seed)
    parts = {"train": ([], []), "valid": ([], []), "test": ([], [])}
    half_u, half_i = n_users // 2, n_items // 2
    popular = n_items - 1
    for u in range(n_users):
        pool = np.arange(half_i) if u < half_u else np.arange(half_i, n_items - 1)
        chosen = rng.choice(pool, size=9, replace=False)
        for part, items in (("train", chosen[:6]), ("valid", chosen[6:7]), ("test", chosen[7:])):
            parts[part][0].extend([u] * len(items))
            parts[part][1].extend(items.tolist())
        parts["train"][0].append(u)
        parts["train"][1].append(popular)
    inter = {k: Interactions(np.array(v[0], dtype=np.int64), np.array(v[1], dtype=np.int64))
             for k, v in parts.items()}
    return Split(
        spec="toy",
        users=IdMap(f"u{i}" for i in range(n_users)),
        items=IdMap(f"i{i}" for i in range(n_items)),
        **inter,
    )


@pytest.fixture
def toy_split():
    return community_split()


@pytest.fixture
def make_community_split():
    """The :func:`community_split` builder, for tests that need variations."""
    return community_split


SCIFI = ["Starship voyage to a distant galaxy", "Alien invasion of a space station", "Robots rebel on Mars",
         "Time machine adventure across centuries", "Astronauts lost near a black hole",
         "Laser battle between star fleets", "Colony ship wakes up in deep space", "Android detective on the moon"]
COOKING = ["Baking sourdough bread at home", "Italian pasta and tomato sauce", "Grilling vegetables in summer",
           "French pastry and croissants", "Quick vegetarian curry recipes", "Chocolate cake for birthdays",
           "Slow-cooked beef stew", "Fresh salads with citrus dressing"]


def write_books(root: Path, rated: bool = False) -> Path:
    """40 users, 16 books with titles (b0-b7 sci-fi, b8-b15 cooking) and users'
    occupations (u0-u19 astronomers and rocket engineers, u20-u39 pastry chefs and cooks).

    Unrated: each user reads 6 books of their own kind. Rated: each user rates 6 books of
    either kind, 5 for their own kind and 1 for the other, so the rating is learnable from
    the occupation and the title."""
    import numpy as np
    import pandas as pd

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    rows = []
    for u in range(40):
        fan_of_scifi = u < 20
        pool = range(16) if rated else (range(0, 8) if fan_of_scifi else range(8, 16))
        for i in rng.choice(list(pool), size=6, replace=False):
            rating = (5.0 if (i < 8) == fan_of_scifi else 1.0,) if rated else ()
            rows.append((f"u{u}", f"b{i}", *rating, 1_000 + len(rows)))
    columns = ["user_id", "item_id"] + (["rating"] if rated else []) + ["timestamp"]
    pd.DataFrame(rows, columns=columns).to_csv(root / "interactions.csv", index=False)
    pd.DataFrame({"item_id": [f"b{i}" for i in range(16)], "title": SCIFI + COOKING}).to_csv(
        root / "items.csv", index=False)
    jobs = ["astronomer", "rocket engineer"] * 10 + ["pastry chef", "restaurant cook"] * 10
    pd.DataFrame({"user_id": [f"u{u}" for u in range(40)], "occupation": jobs}).to_csv(
        root / "users.csv", index=False)
    return root


@pytest.fixture(scope="session")
def books(tmp_path_factory) -> Path:
    """Users u0-u19 read sci-fi, u20-u39 cooking (see :func:`write_books`)."""
    return write_books(tmp_path_factory.mktemp("books"))


@pytest.fixture(scope="session")
def rated_books(tmp_path_factory) -> Path:
    """Everyone rates both kinds: their own kind 5, the other 1 (see :func:`write_books`)."""
    return write_books(tmp_path_factory.mktemp("rated-books"), rated=True)


@pytest.fixture
def run_cli(capsys):
    """Run ``semrec ARGS...`` in-process; returns ``(exit code, stdout, stderr)``."""
    from semrec.cli.main import main

    def run(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exc:
            main(list(args))
        out, err = capsys.readouterr()
        return exc.value.code, out, err

    return run


TASTES_SCIFI = ["Space station crew fights an alien", "Starship pilots explore a distant galaxy",
         "Robots rebel on a mining planet", "Time travellers repair the future",
         "Astronauts stranded on a red planet", "An android learns to dream among the stars"]
TASTES_ROMANCE = ["Two strangers fall in love in Paris", "A wedding planner meets her match",
           "Old flames reunite at a summer lake house", "A love letter lost for forty years",
           "Rival bakers fall for each other", "A royal romance in a small kingdom"]


def write_tastes(folder: Path, n_users: int = 60, per_user: int = 8, seed: int = 0) -> Path:
    """Two tastes with text: users < n/2 pick science-fiction items, the rest romances."""
    import numpy as np

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    items = [(f"s{j}", t, "Science Fiction") for j, t in enumerate(TASTES_SCIFI * 3)]
    items += [(f"r{j}", t, "Romance") for j, t in enumerate(TASTES_ROMANCE * 3)]
    lines = ["item_id,title,genres"] + [f"{i},{t} ({i}),{g}" for i, t, g in items]
    (folder / "items.csv").write_text("\n".join(lines) + "\n")
    scifi = [i for i, _, g in items if g == "Science Fiction"]
    romance = [i for i, _, g in items if g == "Romance"]
    rows = ["user_id,item_id,timestamp"]
    for u in range(n_users):
        pool = scifi if u < n_users // 2 else romance
        for t, i in enumerate(rng.choice(pool, size=per_user, replace=False)):
            rows.append(f"u{u},{i},{1000 + t}")
    (folder / "interactions.csv").write_text("\n".join(rows) + "\n")
    return folder


def _train_run(data: Path, model: str, out: Path, sets: list[str]) -> Path:
    from semrec.pipeline import build_config, train_and_save

    config = build_config(model, sets=["progress=false", "seed=0", *sets], split="random:0.8/0.1/0.1")
    train_and_save(str(data), config, out)
    return out


@pytest.fixture(scope="session")
def tastes(tmp_path_factory) -> Path:
    """Sixty users with two tastes and item text (science fiction or romance)."""
    return write_tastes(tmp_path_factory.mktemp("data") / "tastes")


@pytest.fixture(scope="session")
def train_run():
    """``train_run(data, model, out, sets) -> out``: a quick run on a random split."""
    return _train_run
