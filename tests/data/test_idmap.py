import numpy as np

from semrec.data.idmap import IdMap


def test_indices_follow_first_appearance_and_ids_are_strings():
    m = IdMap([10, "b", 10, 3])
    assert m.ids == ["10", "b", "3"]
    assert m.index(10) == 0 and m.index("10") == 0
    assert len(m) == 3 and "b" in m and "z" not in m


def test_add_keeps_existing_indices():
    m = IdMap(["a", "b"])
    idx = m.add(["c", "a"])
    np.testing.assert_array_equal(idx, [2, 0])
    assert m.ids == ["a", "b", "c"]


def test_unknown_ids_map_to_minus_one_and_round_trip():
    m = IdMap(["a", "b"])
    np.testing.assert_array_equal(m.indices(["b", "x", "a"]), [1, -1, 0])
    assert m.to_external([1, 0]) == ["b", "a"]
    assert IdMap(m.to_list()) == m
