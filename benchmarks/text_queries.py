"""Users known only by a sentence: are the top 10 of the type the sentence names?

For each query naming a product type (amazon-office) or a genre (ml-100k), every run
given recommends 10 items to a new user described by that sentence alone
(``semrec recommend RUN --text ...``), and the script counts how many of the 10 are of
that type: the item's title matches the type's pattern (amazon-office), or the film has
the genre (ml-100k). It prints one row per query and the mean per run::

    semrec train --data amazon-office --model semgraph --split leave-one-out --out runs/office-sg
    semrec train --data amazon-office --model semantic --split leave-one-out --out runs/office-sem
    python benchmarks/text_queries.py --data amazon-office runs/office-sg runs/office-sem

    semrec train --data ml-100k --model semgraph --split given:u1 --out runs/ml-sg
    semrec train --data ml-100k --model semantic --split given:u1 --out runs/ml-sem
    python benchmarks/text_queries.py --data ml-100k runs/ml-sg runs/ml-sem
"""
from __future__ import annotations

import argparse
import json
import os
import re

#: query -> title pattern of the items of that type (amazon-office)
OFFICE = {
    "ink cartridges for my inkjet printer": r"\bink\b",
    "envelopes for mailing letters": r"envelope",
    "a desk stapler": r"stapler",
    "address labels": r"\blabels?\b",
    "three-ring binders": r"\bbinders?\b",
    "a calculator": r"calculator",
    "sticky notes": r"sticky note|post-it",
    "laser printer toner": r"toner",
    "a paper shredder": r"shredder",
    "wooden pencils": r"pencil",
}

#: query -> genre (ml-100k's genre flags)
MOVIELENS = {
    "a funny comedy": "Comedy",
    "a scary horror movie": "Horror",
    "a western with cowboys": "Western",
    "a musical with songs and dancing": "Musical",
    "a documentary": "Documentary",
    "a war film about soldiers": "War",
    "an animated film for children": "Children's",
    "a romantic love story": "Romance",
    "science fiction in outer space": "Sci-Fi",
    "a crime thriller": "Thriller",
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("runs", nargs="+", help="run folders trained on --data")
    ap.add_argument("--data", choices=["amazon-office", "ml-100k"], required=True)
    ap.add_argument("-k", type=int, default=10)
    ap.add_argument("--json", action="store_true", help="one JSON line per run instead of the table")
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from semrec.artifacts.run import load_run
    from semrec.data.load import load_dataset
    from semrec.serve.coldstart import recommend_anonymous

    ds = load_dataset(args.data)
    if args.data == "amazon-office":
        queries = OFFICE
        titles = ds.items["title"].astype(str).str.lower()

        def matches(item: str, pattern: str) -> bool:
            return bool(re.search(pattern, titles.get(item, "")))
    else:
        queries = MOVIELENS
        genres = ds.items["genres"].astype(str)

        def matches(item: str, genre: str) -> bool:
            return genre in [g.strip() for g in genres.get(item, "").split(",")]

    results = {}
    for path in args.runs:
        run = load_run(path)
        per_query = {}
        for query, target in queries.items():
            recs = recommend_anonymous(run, text=query, k=args.k)
            per_query[query] = sum(matches(r["item"], target) for r in recs)
        results[path] = {"model": run.model_name, "per_query": per_query,
                         "mean": sum(per_query.values()) / len(per_query)}
    if args.json:
        for path, r in results.items():
            print(json.dumps({"run": path, **r}))
        return
    print("| query | " + " | ".join(f"{p} ({r['model']})" for p, r in results.items()) + " |")
    print("|---|" + "---|" * len(results))
    for query in queries:
        print(f"| {query} | " + " | ".join(str(r["per_query"][query]) for r in results.values()) + " |")
    means = " | ".join(f"**{r['mean']:.1f}**" for r in results.values())
    print(f"| **mean of top {args.k}** | {means} |")


if __name__ == "__main__":
    main()
