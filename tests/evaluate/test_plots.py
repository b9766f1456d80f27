from semrec.evaluate.plots import at_k, metric_at_k_curve, quality_vs_time

PNG = b"\x89PNG\r\n\x1a\n"


def test_at_k_groups_and_sorts_by_k():
    m = {"recall@20": 0.3, "recall@10": 0.2, "ndcg@10": 0.1, "n_users": 5, "coverage@x": 1.0, "hit@5": True}
    assert at_k(m) == {"ndcg": [(10, 0.1)], "recall": [(10, 0.2), (20, 0.3)]}


def test_metric_at_k_curve_writes_png(tmp_path):
    path = metric_at_k_curve({"recall@10": 0.2, "recall@20": 0.3, "ndcg@10": 0.1, "ndcg@20": 0.12},
                             tmp_path / "at_k.png")
    assert path.read_bytes()[:8] == PNG
    assert metric_at_k_curve({"rmse": 0.9}, tmp_path / "none.png") is None
    assert not (tmp_path / "none.png").exists()


def test_quality_vs_time_skips_rows_without_values(tmp_path):
    rows = [{"model": "mf", "fit_s": 2.0, "ndcg@20": 0.3}, {"model": "pop", "fit_s": 0.0, "ndcg@20": 0.1},
            {"model": "broken", "fit_s": None}]
    assert quality_vs_time(rows, tmp_path / "q.png").read_bytes()[:8] == PNG
    assert quality_vs_time([], tmp_path / "empty.png").read_bytes()[:8] == PNG
