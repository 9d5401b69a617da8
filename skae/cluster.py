"""Torch threads on Dask workers, for grid searches run on a ``dask.distributed`` cluster.

scikit-learn's ``GridSearchCV`` and ``cross_validate`` run on a Dask cluster
through joblib (``with joblib.parallel_config(backend="dask"): ...``); skae
needs nothing for that. What matters is how many threads each fit's torch
uses. Dask's nanny starts every worker process with ``OMP_NUM_THREADS=1``
(its ``distributed.nanny.pre-spawn-environ`` setting), so torch there uses one
thread per process: no oversubscription when several worker processes share a
machine, but a worker with cores to spare leaves them idle.
:class:`TorchThreads` sets the number on the workers, and only there: the
client process's torch is left as it is.

Needs the optional extra ``skae[dask]`` (``pip install "skae[dask]"``).
"""

from numbers import Integral

import torch

try:
    from distributed import WorkerPlugin
except ImportError:  # the module still imports (docs, doctests); using it says what is missing
    WorkerPlugin = None

__all__ = ["TorchThreads"]


class TorchThreads(WorkerPlugin or object):
    """A Dask worker plugin that sets torch's intra-op thread count on every worker.

    Register it with ``client.register_plugin(TorchThreads(n))``: it applies to
    the workers running now and to those that join later. Each worker process
    has its own torch, so the setting stays on the workers.

    Parameters
    ----------
    n_threads : int
        Threads each worker's torch uses for one operation. Give
        ``cores per machine // worker processes per machine`` divided by
        ``threads_per_worker``, since the fits a worker runs at once share its
        torch thread pool.

    Attributes
    ----------
    name : str
        The plugin's name on the cluster; registering it again replaces it.

    See Also
    --------
    torch.set_num_threads : What the plugin calls on each worker.

    Examples
    --------
    >>> from distributed import Client, LocalCluster  # doctest: +SKIP
    >>> from skae.cluster import TorchThreads  # doctest: +SKIP
    >>> cluster = LocalCluster(n_workers=2, threads_per_worker=1)  # doctest: +SKIP
    >>> client = Client(cluster)  # doctest: +SKIP
    >>> client.register_plugin(TorchThreads(4))  # doctest: +SKIP
    """

    name = "skae-torch-threads"

    def __init__(self, n_threads):
        if WorkerPlugin is None:
            raise ImportError('TorchThreads needs dask.distributed: pip install "skae[dask]".')
        if isinstance(n_threads, bool) or not isinstance(n_threads, Integral) or n_threads < 1:
            raise ValueError(f"n_threads must be a positive integer, got {n_threads!r}.")
        self.n_threads = int(n_threads)

    def setup(self, worker):
        """Set the thread count in the worker's process (called by Dask).

        Parameters
        ----------
        worker : distributed.Worker
            The worker the plugin is set up on.
        """
        torch.set_num_threads(self.n_threads)
