"""Data home, named datasets and downloads. No test touches the network: the
downloader is replaced by fakes that fail or copy local files."""
from __future__ import annotations

import dataclasses
import hashlib
import io
import urllib.error
import zipfile
from pathlib import Path

import pytest

from semrec.data import home, load_dataset
from semrec.data.home import PUBLIC_DATASETS, data_home, ensure_dataset, md5sum, verify_dataset, verify_md5
from semrec.data.load import resolve
from semrec.errors import DataError


@pytest.fixture
def empty_home(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "home"
    monkeypatch.setenv("SEMREC_DATA_HOME", str(folder))
    return folder


@pytest.fixture
def offline(monkeypatch) -> list[str]:
    """The downloader fails like a machine without internet; returns the URLs tried."""
    tried: list[str] = []

    def fail(url: str, dest: Path) -> None:
        tried.append(url)
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(home, "fetch_url", fail)
    return tried


def _serve(monkeypatch, files: dict[str, bytes]) -> list[str]:
    """The downloader returns ``files[url]``; returns the URLs fetched."""
    fetched: list[str] = []

    def fake(url: str, dest: Path) -> None:
        fetched.append(url)
        dest.write_bytes(files[url])

    monkeypatch.setattr(home, "fetch_url", fake)
    return fetched


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# ------------------------------------------------------------------ where the data home is


def test_data_home_from_env(monkeypatch, tmp_path):
    monkeypatch.setenv("SEMREC_DATA_HOME", str(tmp_path / "d"))
    assert data_home() == tmp_path / "d"


def test_data_home_defaults_to_the_user_cache(monkeypatch, tmp_path):
    monkeypatch.delenv("SEMREC_DATA_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_home() == tmp_path / "xdg" / "semrec" / "data"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert data_home() == tmp_path / "me" / ".cache" / "semrec" / "data"


def test_named_sets_resolve_under_the_data_home(data_home):
    assert resolve("gowalla") == (data_home / "gowalla", "gowalla")


# ------------------------------------------------------------------ offline: say what to put where


def test_offline_message_for_files(empty_home, offline):
    with pytest.raises(DataError) as e:
        load_dataset("gowalla")
    message = str(e.value)
    assert offline == [PUBLIC_DATASETS["gowalla"].file_urls["train.txt"]]  # the first failure stops
    assert f"dataset 'gowalla' is not in {empty_home / 'gowalla'}" in message
    assert "the download failed" in message and "Name or service not known" in message
    for file in ("train.txt", "test.txt"):
        assert f"{empty_home / 'gowalla' / file}   from https://raw.githubusercontent.com/" in message
    assert "5eec1eb2edb8dd648377d348b8e136cf" in message and "SEMREC_DATA_HOME" in message
    assert not (empty_home / "gowalla").exists()  # nothing half-written


def test_offline_message_for_an_archive(empty_home, offline):
    with pytest.raises(DataError) as e:
        load_dataset("ml-latest-small")
    message = str(e.value)
    assert offline == ["https://files.grouplens.org/datasets/movielens/ml-latest-small.zip"]
    assert "unpack the files of its ml-latest-small/ folder" in message
    assert str(empty_home / "ml-latest-small" / "ratings.csv") in message
    assert str(empty_home / "ml-latest-small" / "movies.csv") in message


def test_no_download_for_amazon_office(empty_home, offline):
    with pytest.raises(DataError) as e:
        load_dataset("amazon-office")
    message = str(e.value)
    assert offline == []  # not even tried
    assert "it has no download" in message and "github.com/yuyq18/APAO" in message
    assert str(empty_home / "amazon-office" / "Office.inter.json") in message
    assert str(empty_home / "amazon-office" / "Office.item.json") in message


def test_downloads_turned_off(empty_home, offline):
    with pytest.raises(DataError, match="downloads are turned off"):
        load_dataset("ml-100k", download=False)
    assert offline == []


# ------------------------------------------------------------------ checksums


def test_md5_of_a_local_file(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"semrec\n")
    digest = _md5(b"semrec\n")
    assert md5sum(path) == digest
    verify_md5(path, digest)
    verify_md5(path, digest.upper())
    with pytest.raises(DataError) as e:
        verify_md5(path, "0" * 32)
    assert e.value.file == str(path)
    assert f"md5 {digest} does not match the expected {'0' * 32}" in str(e.value)


def test_shared_data_matches_the_known_checksums(data_home):
    assert verify_dataset("ml-100k") == ["u.data", "u.item", "u.user", "u1.base", "ua.base"]
    assert verify_dataset("gowalla") == ["train.txt", "test.txt"]
    assert verify_dataset("amazon-office") == ["Office.item.json", "Office.inter.json"]


# ------------------------------------------------------------------ downloads (with a fake downloader)


def test_download_files_checked_and_moved_into_place(empty_home, monkeypatch):
    train, test = b"0 1 2\n1 2\n", b"0 3\n1 1\n"
    urls = PUBLIC_DATASETS["gowalla"].file_urls
    spec = dataclasses.replace(
        PUBLIC_DATASETS["gowalla"], md5={"train.txt": _md5(train), "test.txt": _md5(test)}
    )
    monkeypatch.setitem(PUBLIC_DATASETS, "gowalla", spec)
    fetched = _serve(monkeypatch, {urls["train.txt"]: train, urls["test.txt"]: test})
    ds = load_dataset("gowalla")
    assert ds.name == "gowalla" and len(ds.interactions) == 5
    assert sorted(p.name for p in empty_home.iterdir()) == ["gowalla"]  # no temp folder left
    assert sorted(p.name for p in (empty_home / "gowalla").iterdir()) == ["test.txt", "train.txt"]
    load_dataset("gowalla")
    assert len(fetched) == 2  # present now: not fetched again


def test_download_with_a_wrong_checksum_writes_nothing(empty_home, monkeypatch):
    urls = PUBLIC_DATASETS["gowalla"].file_urls
    _serve(monkeypatch, {urls["train.txt"]: b"0 1\n", urls["test.txt"]: b"0 2\n"})
    with pytest.raises(DataError) as e:
        ensure_dataset("gowalla")
    assert e.value.file == "train.txt" and "5eec1eb2edb8dd648377d348b8e136cf" in str(e.value)
    assert not (empty_home / "gowalla").exists()
    assert list(empty_home.iterdir()) == []


def test_download_archive(empty_home, monkeypatch):
    files = {
        "u.data": b"1\t10\t4\t100\n2\t10\t5\t200\n",
        "u.item": b"10|Heat (1995)|01-Jan-1995||http://x" + b"|0" * 19 + b"\n",
        "u.user": b"1|30|F|writer|0\n2|40|M|none|0\n",
        "u.genre": b"".join(f"{g}|{i}\n".encode() for i, g in enumerate("abcdefghijklmnopqrs")),
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in files.items():
            z.writestr(f"ml-100k/{name}", data)
        z.writestr("ml-100k/sub/ignored.txt", b"not in the root folder")
        z.writestr("elsewhere.txt", b"outside")
    spec = dataclasses.replace(PUBLIC_DATASETS["ml-100k"], md5={"u.data": _md5(files["u.data"])})
    monkeypatch.setitem(PUBLIC_DATASETS, "ml-100k", spec)
    _serve(monkeypatch, {spec.archive_url: buf.getvalue()})
    ds = load_dataset("ml-100k")
    assert len(ds.interactions) == 2 and ds.items.loc["10", "title"] == "Heat (1995)"
    assert sorted(p.name for p in (empty_home / "ml-100k").iterdir()) == sorted(files)


def test_archive_without_the_required_files(empty_home, monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ml-latest-small/ratings.csv", b"userId,movieId,rating,timestamp\n1,1,4,1\n")
    url = PUBLIC_DATASETS["ml-latest-small"].archive_url
    _serve(monkeypatch, {url: buf.getvalue()})
    with pytest.raises(DataError, match="the download of 'ml-latest-small' lacks movies.csv"):
        load_dataset("ml-latest-small")
    assert not (empty_home / "ml-latest-small").exists()


def test_corrupt_archive_gives_the_manual_route(empty_home, monkeypatch):
    _serve(monkeypatch, {PUBLIC_DATASETS["ml-100k"].archive_url: b"this is not a zip"})
    with pytest.raises(DataError, match="the download failed: File is not a zip file"):
        load_dataset("ml-100k")
