"""Data: readers → validated :class:`Dataset` → :class:`Split` in index space."""
from semrec.data.dataset import Dataset, GivenSplit, Interactions
from semrec.data.home import data_home
from semrec.data.idmap import IdMap
from semrec.data.info import describe
from semrec.data.load import load_dataset
from semrec.data.readers.common import render_template
from semrec.data.split import Split, make_split

__all__ = [
    "Dataset",
    "GivenSplit",
    "IdMap",
    "Interactions",
    "Split",
    "data_home",
    "describe",
    "load_dataset",
    "make_split",
    "render_template",
]
