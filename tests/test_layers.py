"""The README's layout table is the import graph (issue 17).

Every import of every module of the package, at the top or lazily inside a function, is
read from its source (``ast``) and checked against the table's layers: a module imports
only modules of its own package or of a lower layer.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "semrec"


def layers() -> dict[str, int]:
    """``{unit: layer}`` from the README's layout table; a unit is a package folder
    (``data``) or a top-level module (``config``, ``__init__``)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Layout"):]
    out: dict[str, int] = {}
    for layer, cell in re.findall(r"^\| (\d+) \| ([^|]+) \|", section, flags=re.M):
        for path in re.findall(r"`semrec/([\w.]+?)(?:\.py)?`", cell):
            assert path not in out, f"{path} is in two rows of the layout table"
            out[path] = int(layer)
    return out


def unit_of(path: Path) -> str:
    """The layout unit of a source file."""
    parts = path.relative_to(PACKAGE).parts
    return parts[0] if len(parts) > 1 else Path(parts[0]).stem


def imported_units(path: Path) -> list[tuple[int, str]]:
    """``(line, unit)`` for every import of a ``semrec`` module in ``path``."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import; semrec imports by absolute name"
            if node.module == "semrec":  # `from semrec import x`: a submodule, or the package root's name
                names = [f"semrec.{a.name}" if _is_unit(a.name) else "semrec" for a in node.names]
            else:
                names = [node.module or ""]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "semrec":
                out.append((node.lineno, parts[1] if len(parts) > 1 else "__init__"))
    return out


def _is_unit(name: str) -> bool:
    return (PACKAGE / name).is_dir() or (PACKAGE / f"{name}.py").is_file()


def sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_is_in_the_layout_table():
    table = layers()
    units = {unit_of(p) for p in sources()}
    assert not units - set(table), f"not in the README's layout table: {sorted(units - set(table))}"
    assert not set(table) - units, f"in the layout table but not in the package: {sorted(set(table) - units)}"


@pytest.mark.parametrize("path", sources(), ids=lambda p: str(p.relative_to(REPO)))
def test_imports_run_downward(path):
    table = layers()
    unit = unit_of(path)
    upward = [f"{path.relative_to(REPO)}:{line} imports semrec.{target} (layer {table[target]}) "
              f"from {unit} (layer {table[unit]})"
              for line, target in imported_units(path) if target != unit and table[target] >= table[unit]]
    assert not upward, "\n".join(upward)


def test_the_checker_sees_lazy_and_from_package_imports(tmp_path):
    # an upward import hidden in a function, and `from semrec import x`, are both found
    source = tmp_path / "probe.py"
    source.write_text("from semrec import api\nfrom semrec import __version__\n"
                      "def f():\n    from semrec.serve.state import LiveState\n")
    assert imported_units(source) == [(1, "api"), (2, "__init__"), (4, "serve")]
