"""The documentation covers the public API, and every public docstring has the numpydoc sections it owes.

The Sphinx build itself (``python -m sphinx -W -b html docs docs/_build/html``)
runs in CI; these checks need no Sphinx and catch a missing page or section early.
"""

import inspect
import re
from pathlib import Path

import pytest

import skae
import skae.engine.threads
import skae.metrics
import skae.plotting

DOCS = Path(__file__).resolve().parents[1] / "docs"

PUBLIC = {
    **{f"skae.{name}": getattr(skae, name) for name in skae.__all__ if name != "__version__"},
    **{f"skae.plotting.{name}": getattr(skae.plotting, name) for name in skae.plotting.__all__},
    "skae.engine.threads.TorchThreads": skae.engine.threads.TorchThreads,
    **{f"skae.metrics.{name}": getattr(skae.metrics, name) for name in skae.metrics.__all__},
}
try:  # the skae[onnx] extra
    import skae.onnx
except ImportError:
    pass
else:
    PUBLIC.update({f"skae.onnx.{name}": getattr(skae.onnx, name) for name in skae.onnx.__all__})


def sections(docstring):
    """Names of the numpydoc sections (a title line underlined with dashes)."""
    lines = inspect.cleandoc(docstring).splitlines()
    return {
        title.strip()
        for title, underline in zip(lines, lines[1:])
        if title.strip() and re.fullmatch(r"-{3,}", underline.strip()) and len(underline.strip()) == len(title.strip())
    }


def api_page_entries():
    """Names listed under the API page's autosummary directives, with their module."""
    entries, module = set(), None
    for line in (DOCS / "api.rst").read_text().splitlines():
        if match := re.match(r"\.\. currentmodule:: (\S+)", line):
            module = match.group(1)
        elif re.fullmatch(r"   [A-Za-z_]\w*", line):
            entries.add(f"{module}.{line.strip()}")
    return entries


def test_every_public_name_has_an_api_page():
    assert set(PUBLIC) <= api_page_entries()


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_public_docstring_has_numpydoc_sections(name):
    obj = PUBLIC[name]
    found = sections(obj.__doc__ or "")
    required = {"Parameters", "See Also", "Examples"}
    required.add("Attributes" if inspect.isclass(obj) else "Returns")
    if name == "skae.save":  # writes a file and returns nothing
        required.discard("Returns")
    if not inspect.isclass(obj) and not inspect.signature(obj).parameters:
        required.discard("Parameters")
    assert required <= found, f"{name} lacks {sorted(required - found)}"
    assert ">>> " in obj.__doc__, f"{name} has no doctest example"


def test_section_parser_finds_sections_and_ignores_plain_text():
    doc = """Summary.

    Parameters
    ----------
    x : int
        Not a section, even with dashes --- inside.

    See Also
    --------
    other : Something.
    """
    assert sections(doc) == {"Parameters", "See Also"}
