"""Deprecated home of :class:`~skae.engine.threads.TorchThreads`.

The Dask worker plugin now lives beside skae's other thread logic, in
:mod:`skae.engine.threads`; importing it from here still works and warns.
"""

import warnings

__all__ = ["TorchThreads"]


def __getattr__(name):
    if name != "TorchThreads":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        "skae.cluster.TorchThreads moved to skae.engine.threads.TorchThreads; "
        "the skae.cluster module will be removed in a future release.",
        FutureWarning,
        stacklevel=2,
    )
    from .engine import threads

    return threads.TorchThreads
