"""The data home, the named public datasets, and their download.

The data home is ``$SEMREC_DATA_HOME``, else ``$XDG_CACHE_HOME/semrec/data``, else
``~/.cache/semrec/data``. A named dataset lives in the folder of that name under
it. A public set that is absent is downloaded from its official home where the
machine has internet, checked against known md5 sums, and moved into place file
by file with an atomic rename; where the download fails, the
:class:`~semrec.errors.DataError` says which files to put in which folder, and
where to get them.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from semrec.data.readers.movielens import ML100K_SPLITS
from semrec.errors import DataError

ENV_VAR = "SEMREC_DATA_HOME"
DOWNLOAD_TIMEOUT_S = 60


@dataclass(frozen=True)
class PublicDataset:
    """A public dataset semrec knows by name.

    Attributes:
        name: the name, and the folder under the data home.
        description: one line for listings.
        homepage: where the data is described (and its terms).
        files: the files the folder must hold; their absence triggers a download.
        extra_files: further files a download brings (optional for reading).
        archive_url: a zip holding the files in its ``archive_root/`` folder.
        archive_root: that folder inside the zip.
        file_urls: file -> URL, where the files are fetched one by one.
        md5: file -> md5 sum every download is checked against.
        manual: where to get the files by hand, where there is no download.
    """

    name: str
    description: str
    homepage: str
    files: tuple[str, ...]
    extra_files: tuple[str, ...] = ()
    archive_url: str | None = None
    archive_root: str = ""
    file_urls: dict[str, str] = field(default_factory=dict)
    md5: dict[str, str] = field(default_factory=dict)
    manual: str = ""

    @property
    def downloadable(self) -> bool:
        return self.archive_url is not None or bool(self.file_urls)


_LIGHTGCN_RAW = (
    "https://raw.githubusercontent.com/gusye1234/LightGCN-PyTorch/"
    "947ca2b3b1d2d3545b114145710cb06c4e57b3d2/data/gowalla/"
)

PUBLIC_DATASETS: dict[str, PublicDataset] = {
    "ml-100k": PublicDataset(
        name="ml-100k",
        description="MovieLens 100K: 943 users, 1,682 movies, 100,000 ratings 1-5, given splits u1-u5/ua/ub",
        homepage="https://grouplens.org/datasets/movielens/100k/",
        files=("u.data", "u.item", "u.user", "u.genre"),
        extra_files=(*(f for pair in ML100K_SPLITS.values() for f in pair), "u.info", "u.occupation"),
        archive_url="https://files.grouplens.org/datasets/movielens/ml-100k.zip",
        archive_root="ml-100k",
        md5={
            "u.data": "6e47046882bad158b0efbb84cd5cb987",
            "u.item": "c9e7f390115d79079537301d5204f3f7",
            "u.user": "1b53539edc13caad0282c8500608a319",
            "u1.base": "4325f44281c9f8c119a3694662d63fc2",
            "ua.base": "346eb46a756be3b382bdef4f7dcf3a01",
        },
    ),
    "ml-latest-small": PublicDataset(
        name="ml-latest-small",
        description="MovieLens latest small: some 100,000 ratings 0.5-5 of 9,000 movies by 600 users, tags",
        homepage="https://grouplens.org/datasets/movielens/latest/",
        files=("ratings.csv", "movies.csv"),
        extra_files=("tags.csv", "links.csv", "README.txt"),
        archive_url="https://files.grouplens.org/datasets/movielens/ml-latest-small.zip",
        archive_root="ml-latest-small",
        # no md5 is known here for these files: a download is checked by reading it
    ),
    "gowalla": PublicDataset(
        name="gowalla",
        description="Gowalla check-ins, LightGCN/NGCF split: 29,858 users, 40,981 places, 810,128 + 217,242",
        homepage="https://github.com/gusye1234/LightGCN-PyTorch/tree/master/data/gowalla",
        files=("train.txt", "test.txt"),
        file_urls={"train.txt": _LIGHTGCN_RAW + "train.txt", "test.txt": _LIGHTGCN_RAW + "test.txt"},
        md5={
            "train.txt": "5eec1eb2edb8dd648377d348b8e136cf",
            "test.txt": "c04e2c4bcd2389f53ed8281816166149",
        },
    ),
    "amazon-office": PublicDataset(
        name="amazon-office",
        description="Amazon 2014 Office Products 5-core: 4,905 users, 2,420 items, 53,258 ordered events",
        homepage="https://cseweb.ucsd.edu/~jmcauley/datasets/amazon/links.html",
        files=("Office.inter.json", "Office.item.json"),
        md5={
            "Office.item.json": "fd601e96bcf3f897b1c11589ef60d598",
            "Office.inter.json": "434f365d1ac67575f93dffb724c97b6b",
        },
        manual=(
            "there is no official download of this preprocessed pair: the files are data/Office/ in "
            "https://github.com/yuyq18/APAO (commit aa08fcfab4ad306a536a1fde648042972a292bbe), built from "
            "the Amazon 2014 Office Products 5-core of "
            "https://cseweb.ucsd.edu/~jmcauley/datasets/amazon/links.html"
        ),
    ),
}


def data_home() -> Path:
    """``$SEMREC_DATA_HOME``, else ``$XDG_CACHE_HOME/semrec/data``, else ``~/.cache/semrec/data``."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "semrec" / "data"


def is_complete(dataset: PublicDataset, folder: Path) -> bool:
    """Whether ``folder`` holds every required file of ``dataset``."""
    return all((folder / f).is_file() for f in dataset.files)


def ensure_dataset(name: str, download: bool = True) -> Path:
    """The folder of public dataset ``name``, downloaded first if it is absent.

    Raises:
        DataError: ``name`` is not a public dataset; or the files are absent and
            cannot be downloaded (no internet, no official download, or
            ``download=False``): the message lists the files to put in place by
            hand, with their full paths and where to get them; or a download does
            not match its checksum.
    """
    if name not in PUBLIC_DATASETS:
        raise DataError(f"unknown public dataset '{name}'; known: {', '.join(PUBLIC_DATASETS)}")
    dataset = PUBLIC_DATASETS[name]
    folder = data_home() / name
    if is_complete(dataset, folder):
        return folder
    if not dataset.downloadable:
        raise DataError(missing_message(dataset, folder, "it has no download"))
    if not download:
        raise DataError(missing_message(dataset, folder, "downloads are turned off"))
    try:
        download_dataset(dataset, folder)
    except (OSError, http.client.HTTPException, zipfile.BadZipFile) as e:  # URLError is an OSError
        raise DataError(missing_message(dataset, folder, f"the download failed: {e}")) from None
    return folder


def missing_message(dataset: PublicDataset, folder: Path, reason: str) -> str:
    """What to do by hand when ``dataset`` is not in ``folder`` and ``reason`` says why
    it was not downloaded."""
    lines = [f"dataset '{dataset.name}' is not in {folder} and {reason}."]
    if dataset.archive_url:
        lines.append(
            f"Download {dataset.archive_url} and unpack the files of its {dataset.archive_root}/ folder "
            f"into {folder}/, so that these files exist:"
        )
        lines += [f"  {folder / f}" for f in dataset.files]
        if dataset.extra_files:
            lines.append(f"  (and, for the given splits and notes, {', '.join(dataset.extra_files)})")
    elif dataset.file_urls:
        lines.append("Put these files there by hand:")
        lines += [f"  {folder / f}   from {url}" for f, url in dataset.file_urls.items()]
    else:
        lines.append(f"Put these files there by hand: {dataset.manual}.")
        lines += [f"  {folder / f}" for f in dataset.files]
    if dataset.md5:
        lines.append("Expected md5 sums: " + ", ".join(f"{f} {m}" for f, m in dataset.md5.items()) + ".")
    lines.append(f"Or set {ENV_VAR} to a folder that holds {dataset.name}/ (now {data_home()}).")
    return "\n".join(lines)


def fetch_url(url: str, dest: Path) -> None:
    """Download ``url`` to ``dest`` (through ``dest.part``, renamed when complete)."""
    part = dest.with_name(dest.name + ".part")
    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response, part.open("wb") as out:
        shutil.copyfileobj(response, out)
    os.replace(part, dest)


def download_dataset(dataset: PublicDataset, folder: Path) -> None:
    """Fetch ``dataset`` into a temporary folder beside ``folder``, check its md5 sums
    and required files, then move each file into ``folder`` with an atomic rename
    (the required files last, so an interrupted move never looks complete)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{dataset.name}-download-") as tmp:
        staging = Path(tmp) / "files"
        staging.mkdir()
        if dataset.archive_url is not None:
            archive = Path(tmp) / "archive.zip"
            fetch_url(dataset.archive_url, archive)
            _extract(archive, dataset.archive_root, staging)
        for file, url in dataset.file_urls.items():
            fetch_url(url, staging / file)
        missing = [f for f in dataset.files if not (staging / f).is_file()]
        if missing:
            raise DataError(
                f"the download of '{dataset.name}' lacks {', '.join(missing)}; "
                f"its source may have changed (see {dataset.homepage})"
            )
        for file, expected in dataset.md5.items():
            if (staging / file).is_file():
                verify_md5(staging / file, expected, name=file)
        folder.mkdir(exist_ok=True)
        names = sorted(p.name for p in staging.iterdir())
        for file in sorted(names, key=lambda f: f in dataset.files):
            os.replace(staging / file, folder / file)


def _extract(archive: Path, root: str, dest: Path) -> None:
    """The files of ``root/`` in the zip (not its subfolders) into ``dest``."""
    with zipfile.ZipFile(archive) as z:
        for info in z.infolist():
            parent, _, base = info.filename.rstrip("/").rpartition("/")
            if info.is_dir() or parent != root or not base:
                continue
            with z.open(info) as src, (dest / base).open("wb") as out:
                shutil.copyfileobj(src, out)


def md5sum(path: Path) -> str:
    """Hex md5 of a file, read in 1 MiB blocks."""
    h = hashlib.md5()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_md5(path: Path, expected: str, name: str | None = None) -> None:
    """Raise a :class:`DataError` unless ``path``'s md5 is ``expected``."""
    got = md5sum(path)
    if got != expected.lower():
        raise DataError(
            f"md5 {got} does not match the expected {expected}: the file is corrupt or a different "
            "version; delete it and download it again",
            file=name or path,
        )


def verify_dataset(name: str, folder: Path | None = None) -> list[str]:
    """Check the md5 sums of public dataset ``name``'s files present in ``folder``
    (default: its folder under the data home); return the names checked.

    Raises:
        DataError: a file's md5 differs from the known one.
    """
    dataset = PUBLIC_DATASETS[name]
    folder = folder or data_home() / name
    checked = []
    for file, expected in dataset.md5.items():
        if (folder / file).is_file():
            verify_md5(folder / file, expected)
            checked.append(file)
    return checked
