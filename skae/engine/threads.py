"""How many intra-op threads skae's torch work uses: chosen for the work, restored after.

torch runs each operation on ``torch.get_num_threads()`` threads. For the small
matrix products of a typical skae fit a second thread gains little on a quiet
machine and loses a lot on a busy one: every parallel operation waits at a
barrier for all its threads, and a thread whose core is taken by another
process is scheduled again only after milliseconds. With one busy process on
a 2-core machine, a step of the digits autoencoder took 69 ms on 2 threads
instead of 4.7 ms on one.

So skae estimates the work of each parallel operation (the floating-point
operations of an average matrix product or convolution, from the networks'
shapes) and gives it :data:`FIT_FLOPS_PER_THREAD` (training: one step repeats
thousands of times, so a stall repeats as often) or
:data:`INFERENCE_FLOPS_PER_THREAD` (one inference call runs its products once)
per thread, from one thread up to the user's own torch setting.
:func:`threads_scope` applies a count to the calling thread for the length of
a block and restores the user's setting afterwards.

``torch.set_num_threads`` is process-wide in intent but not in effect: with
torch's OpenMP backend each thread keeps its own count once it has run a
parallel operation, and a thread that has not yet done so starts from the last
value set anywhere in the process. :func:`threads_scope` is written for that:

* the user's setting is read when the first scope in the process opens, and
  every scope that is the outermost in its thread restores exactly that
  value, so concurrent fits in several threads never restore each other's
  temporary counts, and ``"auto"`` in any thread is capped by it;
* a nested scope (inference inside a fit) restores the count of the scope
  around it;
* once the last scope closes, the value a new thread starts from is the
  user's setting again.

What no scope can prevent: a thread that runs its very first torch operation
while a skae fit is running in another thread starts with that fit's count
(torch initialises each thread's count only once, from the last value set).
skae notices such a thread when it next does skae work there and gives it the
user's setting back; a thread that never does keeps the count, so set it in
that thread with ``torch.set_num_threads`` if it matters.

The module also holds :class:`TorchThreads`, the Dask worker plugin that sets
torch's thread count on every worker of a ``dask.distributed`` cluster.
"""

import contextlib
import math
import threading
import weakref
from numbers import Integral

import torch
from torch import nn

from .networks import ACTIVATIONS, GaussianEncoder, Standardize

__all__ = [
    "FIT_FLOPS_PER_THREAD",
    "INFERENCE_FLOPS_PER_THREAD",
    "TorchThreads",
    "choose_threads",
    "convolution_work",
    "fit_threads",
    "in_threads",
    "inference_threads",
    "layer_work",
    "thread_limit",
    "threads_scope",
]

# Work per thread, in floating-point operations of one matrix product or
# convolution: a product gets a second thread from twice that. The
# measurements behind them (single products on 1 and 2 threads, quiet and
# with one busy process) are in benchmarks/PERFORMANCE.md ("Threads"), from
# `python benchmarks/bench_training.py --thread-sweep`.
FIT_FLOPS_PER_THREAD = 1 << 25
INFERENCE_FLOPS_PER_THREAD = 1 << 22

_lock = threading.Lock()
_open_scopes = 0  # scopes open in the process
_user_threads = None  # the user's setting, as last established (see _users_setting)
_local = threading.local()  # .depth: scopes open in this thread


def _users_setting():
    """The user's torch setting, read while no scope is open (call under the lock).

    This thread's own count is the answer unless it differs from the setting
    the last scope left. Then either the user has changed the setting since, or
    this thread ran its first torch operation while a scope was open elsewhere
    and took that scope's count (torch initialises each thread's count once,
    from the last value set in the process). A new thread reads the
    process-wide value, which tells the two apart; a thread that took a
    scope's count is given the user's setting back.
    """
    global _user_threads
    own = torch.get_num_threads()
    if _user_threads is None or own == _user_threads:
        _user_threads = own
        return own
    reading = []
    reader = threading.Thread(target=lambda: reading.append(torch.get_num_threads()))
    reader.start()
    reader.join()
    _user_threads = reading[0]
    if own != _user_threads:
        torch.set_num_threads(_user_threads)
    return _user_threads


def thread_limit():
    """The most threads ``"auto"`` may use here: the user's torch setting.

    Inside a scope of this thread it is that scope's count (work nested in a
    fit obeys the fit's choice); otherwise the user's setting, which this
    thread's own reading may not be while a scope is open in another thread
    (see :func:`_users_setting`).
    """
    if getattr(_local, "depth", 0):
        return torch.get_num_threads()
    with _lock:
        return _user_threads if _open_scopes else _users_setting()


def choose_threads(flops_per_product, flops_per_thread, limit):
    """Threads for products of ``flops_per_product``: one per ``flops_per_thread``.

    Parameters
    ----------
    flops_per_product : float
        Floating-point operations of an average matrix product or convolution.
    flops_per_thread : float
        The least work worth a thread of its own.
    limit : int
        The most threads to use.

    Returns
    -------
    int
        Between 1 and ``max(1, limit)``.
    """
    wanted = int(flops_per_product // flops_per_thread) if math.isfinite(flops_per_product) else 1
    return max(1, min(limit, wanted))


@contextlib.contextmanager
def threads_scope(n_threads):
    """Run the block with ``n_threads`` intra-op threads in the calling thread.

    Restores, when the block ends, the count of the scope around it, or the
    user's setting for an outermost scope; see the module's description for
    what that means with several threads.

    Parameters
    ----------
    n_threads : int
        Threads for torch operations run by this thread inside the block.
    """
    global _open_scopes
    depth = getattr(_local, "depth", 0)
    counted = False
    try:
        with _lock:
            if _open_scopes == 0:
                _users_setting()
            restore = torch.get_num_threads() if depth else _user_threads
            # Set before counting the scope: a count torch refuses leaves nothing open.
            if n_threads != torch.get_num_threads():
                torch.set_num_threads(n_threads)
            _open_scopes += 1
            counted = True
        _local.depth = depth + 1
        yield
    finally:
        if counted:
            _local.depth = depth
            # Under the lock: a scope opening in another thread must not read the
            # user's setting while this one still has its own count in place.
            with _lock:
                _open_scopes -= 1
                if torch.get_num_threads() != restore or _open_scopes == 0:
                    torch.set_num_threads(restore)


def _checked(n_threads):
    """``n_threads`` as an int, or a ValueError naming it (``set_params`` does not check it)."""
    if isinstance(n_threads, Integral) and n_threads >= 1:
        return int(n_threads)
    raise ValueError(f"n_threads must be 'auto' or an int >= 1, got {n_threads!r}.")


def fit_threads(model, n_features, batch_size, n_threads="auto"):
    """Threads for training ``model`` on batches of ``batch_size`` rows.

    Parameters
    ----------
    model : torch.nn.Module
        An engine model with ``encoder`` and ``decoder`` networks.
    n_features : int
        Values per training row.
    batch_size : int
    n_threads : int or "auto", default="auto"
        What the user asked for.

    Returns
    -------
    threads : int
        For the whole training: ``n_threads`` itself if an int; for
        ``"auto"``, one per :data:`FIT_FLOPS_PER_THREAD` of an average
        product of a training step, at most :func:`thread_limit`.
    operation_threads : int or None
        For ``"auto"``, :func:`thread_limit`: the most threads one large
        product of the hand-written passes may get; None for an int.
    """
    if n_threads != "auto":
        return _checked(n_threads), None
    flops, products = _model_work(model, n_features)
    limit = thread_limit()
    return choose_threads(batch_size * flops / max(1, products), FIT_FLOPS_PER_THREAD, limit), limit


def inference_threads(encoder, n_features, n_rows, n_threads="auto"):
    """Threads for an inference call over ``n_rows`` rows at once.

    ``"auto"`` gives one thread per :data:`INFERENCE_FLOPS_PER_THREAD` of an
    average product of ``encoder`` on that many rows (decoders mirror their
    encoders, so their products are alike), at most :func:`thread_limit`.
    The encoder's work per row is worked out once and kept while it lives.

    Parameters
    ----------
    encoder : torch.nn.Module
    n_features : int
        Values per input row of ``encoder``.
    n_rows : int
        Rows that go through the networks together.
    n_threads : int or "auto", default="auto"
        An int is returned as it is.

    Returns
    -------
    int
    """
    if n_threads != "auto":
        return _checked(n_threads)
    work = _ENCODER_WORK.get(encoder)
    if work is None or work[0] != n_features:
        flops, products = layer_work(encoder, n_features)
        work = _ENCODER_WORK[encoder] = (n_features, flops / max(1, products))
    return choose_threads(n_rows * work[1], INFERENCE_FLOPS_PER_THREAD, thread_limit())


# encoder -> (n_features, flops per row of an average product); weak, so that
# it never keeps a network alive.
_ENCODER_WORK = weakref.WeakKeyDictionary()


def _model_work(model, n_features):
    encoder_flops, encoder_products = layer_work(model.encoder, n_features)
    decoder_flops, decoder_products = layer_work(model.decoder, None)
    return encoder_flops + decoder_flops, encoder_products + decoder_products


def in_threads(n_threads):
    """:func:`threads_scope` of ``n_threads``, or a no-op when the calling thread has that many.

    Parameters
    ----------
    n_threads : int or None
        None leaves torch's setting as it is.

    Returns
    -------
    context manager
    """
    if n_threads is None:
        return contextlib.nullcontext()
    own = torch.get_num_threads()
    # Outside skae's scopes a thread's count should be the user's setting; one
    # that differs (a thread that took another scope's count, or a setting
    # changed since) goes through a scope, which finds and restores the right one.
    if n_threads == own and (getattr(_local, "depth", 0) or own == _user_threads):
        return contextlib.nullcontext()
    return threads_scope(n_threads)


def layer_work(network, n_inputs):
    """Floating-point operations per row, and the number of products, of ``network``.

    Worked out from the layers' shapes, without running the network: through
    ``Sequential`` containers and
    :class:`~skae.engine.networks.GaussianEncoder`, linear layers and
    convolutions (plain and transposed, their feature maps' sizes followed
    through ``Unflatten`` and ``Flatten``) count exactly. Any other module that
    owns parameters counts as two operations per parameter, as a dense layer
    would, and so does a convolution whose input size is unknown because such a
    module came before it.

    Parameters
    ----------
    network : torch.nn.Module
    n_inputs : int or None
        Values per input row; None when unknown (a network that starts with a
        linear layer or an ``Unflatten`` does not need it).

    Returns
    -------
    flops_per_row : float
        Floating-point operations of one row's forward pass.
    n_products : int
        Linear layers, convolutions and other parameter-owning modules met.
    """
    flops, products = 0.0, 0
    shape = None if n_inputs is None else (n_inputs,)
    for module in _leaves(network):
        work, shape = _leaf_work(module, shape)
        if work is not None:
            flops += work
            products += 1
    return flops, products


def _leaves(module):
    if type(module) is nn.Sequential:
        for child in module:
            yield from _leaves(child)
    elif type(module) is GaussianEncoder:
        yield from _leaves(module.body)
    else:
        yield module


_CONVOLUTIONS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
_ELEMENTWISE = (*ACTIVATIONS.values(), nn.Dropout, Standardize)  # Unstandardize is a Standardize


def _leaf_work(module, shape):
    """``(flops per row or None for no product, output shape or None if unknown)``."""
    if isinstance(module, nn.Linear):
        return 2.0 * module.in_features * module.out_features, (module.out_features,)
    if isinstance(module, nn.Unflatten) and module.dim in (1, -len(shape) if shape else 1):
        return None, tuple(module.unflattened_size)
    if isinstance(module, nn.Flatten) and shape is not None and (module.start_dim, module.end_dim) == (1, -1):
        return None, (math.prod(shape),)
    if shape is not None and isinstance(module, _CONVOLUTIONS + _TRANSPOSED):
        work = convolution_work(module, shape)
        if work is not None:
            return work
    parameters = sum(p.numel() for p in module.parameters())
    if parameters:
        return 2.0 * parameters, None
    # Without parameters: the modules skae builds between layers keep the shape;
    # any other may reshape, so the shape is unknown after it.
    return None, shape if isinstance(module, _ELEMENTWISE) else None


def convolution_work(module, shape):
    """``(flops per row, output shape)`` of a convolution on rows of ``shape``, or None.

    Parameters
    ----------
    module : torch.nn.Module
        A plain or transposed convolution (``Conv1d`` to ``ConvTranspose3d``).
    shape : tuple of int
        ``(channels, *sizes)`` of one input row.

    Returns
    -------
    tuple or None
        None when ``shape`` does not suit the module (wrong number of
        dimensions or channels, or maps too small for the kernel).
    """
    spatial = shape[1:]
    if len(spatial) != len(module.kernel_size) or shape[0] != module.in_channels:
        return None
    transposed = isinstance(module, _TRANSPOSED)
    if isinstance(module.padding, str):  # "valid", or "same" (stride 1 only)
        padding = (0,) * len(spatial) if module.padding == "valid" else None
    else:
        padding = module.padding
    sizes = []
    for i, side in enumerate(spatial):
        reach = module.dilation[i] * (module.kernel_size[i] - 1)
        if padding is None:
            out = side
        elif transposed:
            out = (side - 1) * module.stride[i] - 2 * padding[i] + reach + module.output_padding[i] + 1
        else:
            out = (side + 2 * padding[i] - reach - 1) // module.stride[i] + 1
        if out < 1:
            return None
        sizes.append(out)
    out_shape = (module.out_channels, *sizes)
    # Each output value (plain) or input value (transposed) gathers or spreads
    # a kernel over the maps of its group on the other side.
    other_maps = (module.out_channels if transposed else module.in_channels) / module.groups
    values = math.prod(shape if transposed else out_shape)
    return 2.0 * values * math.prod(module.kernel_size) * other_maps, out_shape


class _TorchThreads:
    """A Dask worker plugin that sets torch's intra-op thread count on every worker.

    Register it with ``client.register_plugin(TorchThreads(n))``: it applies to
    the workers running now and to those that join later. Each worker process
    has its own torch, so the setting stays on the workers; the client
    process's torch is left as it is.

    Dask's nanny starts every worker process with ``OMP_NUM_THREADS=1`` (its
    ``distributed.nanny.pre-spawn-environ`` setting), so torch there uses one
    thread per process: no oversubscription when several worker processes
    share a machine, but a worker with cores to spare leaves them idle. skae's
    own choice (``n_threads="auto"``) never goes above the worker's setting.

    Needs the optional extra ``skae[dask]`` (``pip install "skae[dask]"``).

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
    >>> from skae.engine.threads import TorchThreads  # doctest: +SKIP
    >>> cluster = LocalCluster(n_workers=2, threads_per_worker=1)  # doctest: +SKIP
    >>> client = Client(cluster)  # doctest: +SKIP
    >>> client.register_plugin(TorchThreads(4))  # doctest: +SKIP
    """

    name = "skae-torch-threads"

    def __init__(self, n_threads):
        if _WORKER_PLUGIN is None:
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


_WORKER_PLUGIN = None


def __getattr__(name):
    # TorchThreads subclasses distributed.WorkerPlugin, which Dask's
    # register_plugin requires; importing distributed takes about a second, so
    # it happens on first use of the name, not whenever skae is imported.
    global TorchThreads, _WORKER_PLUGIN
    if name != "TorchThreads":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        from distributed import WorkerPlugin  # noqa: PLC0415
    except ImportError:
        bases = (_TorchThreads,)
    else:
        _WORKER_PLUGIN = WorkerPlugin
        bases = (_TorchThreads, WorkerPlugin)
    TorchThreads = type("TorchThreads", bases, {"__module__": __name__, "__doc__": _TorchThreads.__doc__})
    return TorchThreads
