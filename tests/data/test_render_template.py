"""render_template: str.format fields plus [optional] segments that vanish when empty."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from semrec.data.readers.common import default_template, render_table, render_template, template_fields
from semrec.errors import ConfigError

TEMPLATE = "{title}.[ Brand: {brand}.][ Categories: {categories}.][ {description}]"


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (("Pen", "Bic", "Office", "Blue."), "Pen. Brand: Bic. Categories: Office. Blue."),
        (("Pen", "", "Office", "Blue."), "Pen. Categories: Office. Blue."),
        (("Pen", None, np.nan, "  "), "Pen."),
        (("Pen", pd.NA, "Office", ""), "Pen. Categories: Office."),
    ],
)
def test_optional_segments_vanish_when_a_field_is_empty(row, expected):
    fields = dict(zip(["title", "brand", "categories", "description"], row))
    assert render_template(TEMPLATE, fields) == expected


def test_empty_field_outside_brackets_renders_empty():
    assert render_template("{a} and {b}", {"a": "", "b": "x"}) == "and x"


def test_segment_with_two_fields_needs_both():
    t = "{name}[, born {year} in {city}]"
    assert render_template(t, {"name": "Ada", "year": 1815, "city": "London"}) == "Ada, born 1815 in London"
    assert render_template(t, {"name": "Ada", "year": 1815, "city": ""}) == "Ada"


def test_format_specs_conversions_lists_and_literals():
    row = {"price": 2.5, "name": "pen", "tags": ["blue", "cheap"], "none": []}
    assert render_template("{price:.2f} {name!r}", row) == "2.50 'pen'"
    assert render_template("Tags: {tags}.[ Also: {none}.]", row) == "Tags: blue, cheap."
    assert render_template("[[{name}]] {{literal}}", row) == "[pen] {literal}"


def test_whitespace_collapses():
    assert render_template("{a}\n\n  {b} ", {"a": "one  two", "b": "three"}) == "one two three"


def test_works_on_a_dataframe_row():
    years = pd.array([1995, None], dtype="Int64")
    table = pd.DataFrame({"title": ["Heat", "Up"], "year": years}, index=["1", "2"])
    assert render_template("{title}[ ({year})]", table.loc["1"]) == "Heat (1995)"
    assert render_template("{title}[ ({year})]", table.loc["2"]) == "Up"
    assert render_table("{title}[ ({year})]", table).to_dict() == {"1": "Heat (1995)", "2": "Up"}


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("[{a}", r"'\[' without a matching '\]'"),
        ("{a}]", r"'\]' without a matching '\['"),
        ("[[{a}][x]]", r"'\]' without a matching"),
        ("[{a}[{b}]]", "cannot nest"),
        ("{}", "is not a field"),
        ("{a", "is not a field"),
    ],
)
def test_malformed_templates(template, message):
    with pytest.raises(ConfigError, match=message):
        render_template(template, {"a": 1, "b": 2})


def test_unknown_column_is_an_error_not_a_blank():
    with pytest.raises(ConfigError, match=r"uses \{titel\}, which is not a column; columns: title"):
        render_template("{titel}", {"title": "Heat"})
    with pytest.raises(ConfigError, match=r"render_table: template '\{titel\}' uses \{titel\}"):
        render_table("{titel}", pd.DataFrame({"title": ["Heat"]}))


def test_template_fields_and_default_template():
    assert template_fields(TEMPLATE) == ["title", "brand", "categories", "description"]
    assert default_template(["genres", "title", "release_date"]) == (
        "[{title}.][ Genres: {genres}.][ Release date: {release_date}.]"
    )
    assert default_template([]) is None
    row = {"title": "Heat", "genres": "", "release_date": "1995"}
    assert render_template(default_template(list(row)), row) == "Heat. Release date: 1995."


def test_a_value_ending_in_a_period_does_not_double_it():
    from semrec.data.readers.common import render_template

    assert render_template("{title}.[ Brand: {brand}.]", {"title": "Sticky pad.", "brand": "Post-It"}) == (
        "Sticky pad. Brand: Post-It."
    )
