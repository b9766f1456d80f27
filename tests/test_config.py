from dataclasses import dataclass

import pytest

from semrec.config import (
    DataConfig,
    TextConfig,
    apply_sets,
    dump_toml,
    from_dict,
    parse_value,
    read_toml,
    tables,
)
from semrec.errors import ConfigError
from semrec.train.loop import TrainConfig


@dataclass(frozen=True)
class Toy:
    dim: int = 8
    reg: float = 0.1
    name: str = "x"
    flag: bool = False
    limit: float | None = None


def test_from_dict_accepts_known_keys_and_widens_int_to_float():
    cfg = from_dict(Toy, {"dim": 4, "reg": 1})
    assert cfg == Toy(dim=4, reg=1.0)
    assert isinstance(cfg.reg, float)


def test_unknown_key_is_named():
    with pytest.raises(ConfigError, match=r"\[model\] unknown key\(s\) dimm; known: dim, flag, limit, name, reg"):
        from_dict(Toy, {"dimm": 4}, "[model] ")


@pytest.mark.parametrize("key,value,expected", [
    ("dim", "four", "dim: expected int, got 'four'"),
    ("dim", 1.5, "dim: expected int, got 1.5"),
    ("flag", 1, "flag: expected bool, got 1"),
    ("dim", True, "dim: expected int, got True"),
])
def test_wrong_type_is_named(key, value, expected):
    with pytest.raises(ConfigError, match=expected):
        from_dict(Toy, {key: value})


def test_literal_field_rejects_other_values():
    with pytest.raises(ConfigError, match="task: expected one of 'ranking', 'rating', got 'ranknig'"):
        from_dict(TrainConfig, {"task": "ranknig"})


def test_parse_value_by_field_type():
    assert parse_value(Toy, "dim", "16") == 16
    assert parse_value(Toy, "reg", "1e-3") == 1e-3
    assert parse_value(Toy, "flag", "true") is True
    assert parse_value(Toy, "limit", "none") is None
    assert parse_value(Toy, "limit", "2.5") == 2.5
    with pytest.raises(ConfigError, match="dim: cannot read 'big' as int"):
        parse_value(Toy, "dim", "big")


def test_apply_sets_bare_and_dotted_keys():
    sections = {"model": (Toy, {}), "train": (TrainConfig, {}), "data": (DataConfig, {})}
    apply_sets(sections, ["dim=32", "train.epochs=3", "lr=0.01", "split=given:u2"])
    assert sections["model"][1] == {"dim": 32}
    assert sections["train"][1] == {"epochs": 3, "lr": 0.01}
    assert sections["data"][1] == {"split": "given:u2"}


def test_apply_sets_errors_name_the_key():
    sections = {"model": (Toy, {}), "train": (TrainConfig, {})}
    with pytest.raises(ConfigError, match="unknown key 'epochz'"):
        apply_sets(sections, ["epochz=3"])
    with pytest.raises(ConfigError, match="expected key=value"):
        apply_sets(sections, ["epochs"])
    with pytest.raises(ConfigError, match="unknown section 'trian'"):
        apply_sets(sections, ["trian.epochs=3"])


def test_ambiguous_bare_key_asks_for_a_section():
    @dataclass(frozen=True)
    class Other:
        dim: int = 1

    sections = {"model": (Toy, {}), "other": (Other, {})}
    with pytest.raises(ConfigError, match="write model.dim or other.dim"):
        apply_sets(sections, ["dim=3"])


def test_toml_round_trip(tmp_path):
    text = dump_toml({"model": {"name": "mf", "dim": 8, "reg": 0.5, "flag": True, "tags": ["a", "b"]}})
    path = tmp_path / "c.toml"
    path.write_text(text)
    assert read_toml(path) == {"model": {"name": "mf", "dim": 8, "reg": 0.5, "flag": True, "tags": ["a", "b"]}}


def test_bad_toml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[model\nname=")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        read_toml(bad)
    with pytest.raises(ConfigError, match="does not exist"):
        read_toml(tmp_path / "nope.toml")


def test_train_config_checks_ranges():
    with pytest.raises(ConfigError, match="train.epochs must be at least 1"):
        TrainConfig(epochs=0)
    with pytest.raises(ConfigError, match="train.lr must be positive"):
        TrainConfig(lr=0.0)


# ------------------------------------------------------------------ mistakes without tracebacks (issue 20)


@pytest.mark.parametrize("content,message", [
    (b"\x7fELF\x02\x01\x01\x00\xd0\x90\xff", "not a TOML text file: byte 0xff on line 1 is not UTF-8"),
    ('[model]\nname = "mf"\n'.encode("utf-16"), "not a TOML text file: byte 0xff on line 1 is not UTF-8"),
])
def test_a_binary_or_utf16_config_file_is_named(tmp_path, content, message):
    # failed before the fix on 3433209 with a UnicodeDecodeError traceback
    path = tmp_path / "c.toml"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=f"c.toml: {message}"):
        read_toml(path)


def test_a_byte_order_mark_is_allowed(tmp_path):
    path = tmp_path / "c.toml"
    path.write_bytes(b'\xef\xbb\xbf[model]\nname = "mf"\n')
    assert read_toml(path) == {"model": {"name": "mf"}}


def test_sections_must_be_tables():
    with pytest.raises(ConfigError, match=r"c.toml: 'model' must be a \[model\] table of settings, got 3"):
        tables({"model": 3}, ("data", "model"), "c.toml: ")
    with pytest.raises(ConfigError, match="c.toml: unknown section"):
        tables({"modle": {}}, ("data", "model"), "c.toml: ")
    assert tables({"model": {"dim": 2}}, ("data", "model"), "") == {"data": {}, "model": {"dim": 2}}


@pytest.mark.parametrize("key,text,message", [
    ("reg", "nan", "reg: expected a finite number, got nan"),
    ("reg", "inf", "reg: expected a finite number, got inf"),
    ("reg", "1e400", "reg: expected a finite number, got inf"),
    ("dim", "100000000000000000000000", "dim: 100000000000000000000000 is too large"),
])
def test_non_finite_and_huge_numbers_are_refused(key, text, message):
    sections = {"model": (Toy, {})}
    apply_sets(sections, [f"{key}={text}"])
    with pytest.raises(ConfigError, match=message):
        from_dict(Toy, sections["model"][1])


@pytest.mark.parametrize("cls,values,message", [
    (DataConfig, {"split_seed": -1}, "data.split_seed must be a whole number >= 0, got -1"),
    (TrainConfig, {"seed": -1}, "train.seed must be a whole number >= 0, got -1"),
    (TrainConfig, {"weight_decay": -0.5}, "train.weight_decay must be >= 0"),
    (TrainConfig, {"threads": 0}, "train.threads must be at least 1"),
    (TextConfig, {"knn": -1}, "text.knn must be >= 0"),
    (TextConfig, {"encode_batch_size": 0}, "text.encode_batch_size must be at least 1"),
    (TextConfig, {"max_seq_length": 1}, "text.max_seq_length must be at least 2"),
])
def test_out_of_range_settings_name_their_key(cls, values, message):
    # split_seed=-1 and seed=-1 failed before the fix on 3433209 with numpy's ValueError
    with pytest.raises(ConfigError, match=message):
        from_dict(cls, values)
