"""``Interactions``: the CSR views the models read."""
from __future__ import annotations

import numpy as np

from semrec.data.dataset import Interactions


def test_csr_values_keep_the_last_of_a_repeated_pair():
    inter = Interactions(
        users=np.array([0, 0, 1, 0]),
        items=np.array([1, 2, 0, 1]),
        ratings=np.array([2.0, 4.0, 5.0, 3.0], dtype=np.float32),
        timestamps=np.array([1_600_000_001, 1_600_000_002, 1_600_000_003, 1_600_000_004]),
    )
    ones = inter.csr(2, 3)
    assert ones.toarray().tolist() == [[0, 1, 1], [1, 0, 0]] and ones.dtype == np.float32
    assert inter.csr(2, 3, "ratings").toarray().tolist() == [[0, 3, 4], [5, 0, 0]]
    stamps = inter.csr(2, 3, "timestamps")
    # float64: Unix seconds stay exact (float32 would round them to multiples of 128)
    assert stamps.dtype == np.float64
    assert stamps[0, 1] == 1_600_000_004 and stamps[0, 2] == 1_600_000_002 and stamps[1, 0] == 1_600_000_003
