"""One reader per file format; each returns a validated :class:`~semrec.data.dataset.Dataset`.

:func:`semrec.data.load.load_dataset` picks the reader from the files present.
"""
from semrec.data.readers.amazon import read_amazon
from semrec.data.readers.common import render_table, render_template, template_fields, validate_interactions
from semrec.data.readers.generic import read_generic
from semrec.data.readers.lightgcn import read_lightgcn
from semrec.data.readers.movielens import read_ml100k, read_movielens_csv, read_movielens_dat

__all__ = [
    "read_amazon",
    "read_generic",
    "read_lightgcn",
    "read_ml100k",
    "read_movielens_csv",
    "read_movielens_dat",
    "render_table",
    "render_template",
    "template_fields",
    "validate_interactions",
]
