"""semrec from Python, end to end, on DataFrames built here: fit a model that reads text
and the interaction graph, then recommend for known users, new users (from items or a
sentence), find similar items, add events and a new item, evaluate, save and load.

    python examples/python_api.py [RUN_DIR]      # needs the [text] extras

A few seconds on a laptop; the run folder it writes (default ``runs/bookshop``) is one
``semrec evaluate``, ``semrec recommend`` and ``semrec serve`` read as well.
"""
from __future__ import annotations

import sys

import numpy as np
import pandas as pd

import semrec

# --- your data: what the items are, and who did what (ids of any type, compared as text)
BOOKS = {
    "space": ["Starship voyage to a distant galaxy", "Alien invasion of a space station",
              "Robots rebel on Mars", "Colony ship wakes up in deep space", "Android detective on the moon"],
    "kitchen": ["Baking sourdough bread at home", "Italian pasta and tomato sauce", "French pastry and croissants",
                "Quick vegetarian curry recipes", "Slow-cooked beef stew"],
    "garden": ["Growing tomatoes on a balcony", "Pruning roses through the seasons", "A year in the vegetable patch",
               "Compost, soil and worms", "Planting a wildflower meadow"],
}
items = pd.DataFrame([(f"{shelf}-{n}", title, shelf) for shelf, titles in BOOKS.items()
                      for n, title in enumerate(titles)], columns=["item_id", "title", "shelf"])
rng = np.random.default_rng(0)
rows = []
for u in range(90):  # each reader keeps to one shelf, in their own order
    shelf = list(BOOKS)[u % 3]
    for t, n in enumerate(rng.permutation(len(BOOKS[shelf]))[:4]):
        rows.append((f"reader-{u}", f"{shelf}-{n}", 1_700_000_000 + 3600 * t))
interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])

# --- fit: settings by name (unknown names and wrong types are refused here, before any work)
rec = semrec.Recommender("semgraph", epochs=30, dim=32, hidden=64, lr=0.01, progress=False, tensorboard=False)
rec.fit(interactions, items=items, split="leave-one-out")
print(rec)

# --- answers are DataFrames: user, item, score, rank, title
print(rec.recommend(["reader-0", "reader-1"], k=3))                        # known users
print(rec.recommend("reader-0", k=3, items=["space-0", "garden-0", "kitchen-0"]))  # among candidates
print(rec.recommend_for_history(["garden-1", "garden-3", "garden-4"], k=3))    # a new user from three items
print(rec.recommend_for_history(text="robots and spaceships", k=3))         # ... or from a sentence
print(rec.similar_items("kitchen-0", k=3))                                  # items like an item
print(rec.similar_items(text="how to grow vegetables", k=3))                # ... or like a sentence

# --- new events and new items take effect at once, without training
before = rec.recommend("reader-2", k=3)
rec.partial_fit(pd.DataFrame({"user_id": ["reader-2", "someone-new"],
                              "item_id": [before["item"][0], "kitchen-2"]}))
print(before, rec.recommend("reader-2", k=3), rec.recommend("someone-new", k=3), sep="\n")
rec.partial_fit(items=pd.DataFrame({"item_id": ["space-new"], "title": ["Mutiny on a starship near Jupiter"],
                                    "shelf": ["space"]}))
print(rec.recommend("reader-0", k=3))                                       # the new book can be recommended

# --- evaluate (the dictionary `semrec evaluate --json` prints), save, load
print({k: round(v, 3) for k, v in rec.evaluate(ks=[3])["metrics"].items() if k in ("recall@3", "ndcg@3")})
path = rec.save(sys.argv[1] if len(sys.argv) > 1 else "runs/bookshop", overwrite=True)
loaded = semrec.Recommender.load(path)
assert loaded.recommend(rec.users, k=5).equals(rec.recommend(rec.users, k=5))  # identical answers
print(f"saved to {path}; loaded, it answers identically")
