"""Settings for the docstring examples that pytest runs (``--doctest-modules``)."""

import pytest


def pytest_collection_modifyitems(items):
    # The examples train a few epochs to stay fast, so they stop at max_iter on purpose.
    expected = pytest.mark.filterwarnings(
        "ignore:Maximum iterations:sklearn.exceptions.ConvergenceWarning"
    )
    for item in items:
        if isinstance(item, pytest.DoctestItem):
            item.add_marker(expected)
