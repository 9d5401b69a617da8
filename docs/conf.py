"""Sphinx configuration of the skae documentation.

Build with ``python -m sphinx -W -b html docs docs/_build/html`` from the
repository root (``pip install ".[docs]"`` first).
"""

import sys
from pathlib import Path

import matplotlib
import torch

matplotlib.use("Agg")
# The figures and examples train small networks: one torch thread is about as fast
# as two there, and it does not stall when other jobs share the cores (two did, badly).
torch.set_num_threads(1)

# Document the skae of this checkout, even where another copy is installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import skae  # noqa: E402

project = "skae"
author = "the skae developers"
copyright = "2026, the skae developers"
release = skae.__version__
version = skae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "matplotlib.sphinxext.plot_directive",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
# sampling_table.rst is written by _write_sampling_table and included by the user guide.
exclude_patterns = ["_build", "images/README.md", "user_guide/sampling_table.rst"]
templates_path = ["_templates"]

# API pages: one page per public name, generated from the docstrings.
autosummary_generate = True
autodoc_default_options = {"members": True}
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
# Docstrings must name their sections correctly; checked on every build.
numpydoc_validation_checks = {"GL06", "GL07", "PR01", "PR02", "PR03", "SA04", "SS03"}

# No network at build time: cross-references to other projects stay plain text.
intersphinx_mapping = {}

html_theme = "pydata_sphinx_theme"
html_title = f"skae {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path = []

# Figures in the user guide are drawn at build time by skae's own Displays.
plot_include_source = True
plot_html_show_source_link = False
plot_html_show_formats = False
plot_formats = [("png", 100)]
plot_rcparams = {"figure.autolayout": True}

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "download_all_examples": False,
    "remove_config_comments": True,
    "show_memory": False,
}

myst_heading_anchors = 3


def _skip_scikit_learn_members(app, what, name, obj, skip, options):
    """Leave out methods the estimators inherit from scikit-learn (get_params, set_output, ...).

    scikit-learn documents them; their docstrings refer to pages of its own site.
    """
    module = getattr(obj, "__module__", None) or ""
    if what == "class" and module.split(".")[0] == "sklearn":
        return True
    return skip


_SAMPLING_TABLE = Path(__file__).resolve().parent / "user_guide" / "sampling_table.rst"


def _write_sampling_table(app):
    """Measure the samplers for the user guide's table, and check the guide's claims on it.

    Runs ``benchmarks/bench_samples.py``'s measurement (one seed, 2 and 8
    components, the estimators' default settings) and writes the table that
    ``user_guide/autoencoders.rst`` includes. The guide states the benchmark's
    ``CLAIMS``; if the table built here contradicts one, the build fails rather
    than publish a sentence the numbers do not support.
    """
    import importlib.util

    from sphinx.errors import ExtensionError

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_samples.py"
    spec = importlib.util.spec_from_file_location("bench_samples", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    means, failures, _ = bench.run([0], [2, 8], {"device": "cpu"}, verbose=False)
    if failures:
        raise ExtensionError(
            "The user guide's claims about sampling do not hold on the table the build "
            "measured:\n" + "\n".join(failures)
        )
    _SAMPLING_TABLE.write_text(
        bench.rst_table(means, title="Samples of each generator against the 1,257 training "
                        "images (seed 0)")
    )


def setup(app):
    app.connect("autodoc-skip-member", _skip_scikit_learn_members)
    app.connect("builder-inited", _write_sampling_table)
