"""The estimator's state as plain data: what pickle, joblib, skops and ``.skae`` files hold.

:func:`estimator_state` turns a skae estimator into a dict of plain values
(dicts with string keys, lists, strings, numbers, booleans, None) and NumPy
arrays, and :func:`restore_estimator` is the one way such a state enters an
estimator: ``__setstate__`` (so pickle, joblib, skops and ``copy``) and
:func:`skae.load` all go through it. The state holds no torch object: network
weights and the optimiser's moments are arrays, the networks' structure is the
fitted architecture (plain values the estimator rebuilds the networks from),
and devices are strings. Its layout::

    {
        "skae_state": 1,                # STATE_VERSION
        "params": {name: value},        # get_params(deep=False), every parameter
        "attributes": {name: value},    # every other instance attribute
        "networks": None or {"encoder_": weights, "decoder_": weights},
        "optimizer": None or value,     # the Adam optimiser's state_dict
    }

where ``weights`` maps each ``state_dict`` key of a network skae built to an
array. A value with no plain form of its own (a tuple, a dict with other keys
than strings, a NumPy scalar, an array of strings, a tensor, a device, a random
state) is a small dict tagged with ``"__skae__"``; see :func:`to_plain`.

A user-supplied torch module (``encoder=``, ``decoder=``, and the trained copy
of it) has no plain form: the state keeps it in a :class:`PickleOnly` wrapper,
which pickle and joblib store as the module itself, and which every other route
(``.skae`` files, skops) refuses with a TypeError that says so.
"""

import copy

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

from . import _schema
from ._schema import InvalidStateError
from .engine.device import resolve_device

__all__ = [
    "STATE_VERSION",
    "InvalidStateError",
    "PickleOnly",
    "estimator_state",
    "restore_estimator",
    "to_plain",
]

#: Version of the state layout; a state of another version is refused.
STATE_VERSION = 1

#: How deeply values may nest in a state (skae's own go 8 levels deep).
MAX_DEPTH = 32

TAG = "__skae__"
NETWORKS = ("encoder_", "decoder_")
_OPTIMIZER = "_optimizer_state"
_SECTIONS = {"skae_state", "params", "attributes", "networks", "optimizer"}
# The floating dtypes network weights may have (skae trains in float32; a network
# converted in place by its user keeps float64).
_WEIGHT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Bit generators a RandomState parameter may wrap, by the name its state records.
_BIT_GENERATORS = {name: getattr(np.random, name) for name in ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")}
# Estimators a parameter may hold (latent_sampler=GaussianMixture(...)), kept as their parameters.
_ESTIMATORS = {"sklearn.mixture.GaussianMixture": GaussianMixture}


class PickleOnly:
    """A value with no plain form (a user-supplied torch module), kept for pickle alone.

    Pickle, joblib and ``copy`` store the value itself; skops calls
    ``__getstate__``, and ``.skae`` files call :meth:`refuse`: both raise a
    TypeError that names the value and says which routes can store it.
    """

    __slots__ = ("value", "where")

    def __init__(self, value, where):
        self.value = value
        self.where = where

    def __reduce__(self):
        # Not (PickleOnly, ...): skops would then try to store the value itself.
        return (_pickle_only, (self.value, self.where))

    def __getstate__(self):
        self.refuse()

    def refuse(self):
        """Raise the TypeError that explains why the value cannot be stored as plain data."""
        what = type(self.value).__name__
        if isinstance(self.value, torch.nn.Module):
            what = f"user-supplied torch module ({what})"
        raise TypeError(
            f"{self.where} holds a {what}, which only pickle and joblib can store: skae's "
            "own .skae files, skops and ONNX export keep plain data only (numbers, strings, "
            "arrays and the weights of the networks skae builds). Save this estimator with "
            "pickle or joblib, and load such files only from sources you trust."
        )


def _pickle_only(value, where):
    return PickleOnly(value, where)


# ------------------------------------------------------------------ to plain data


def to_plain(value, where, params=None):
    """``value`` as plain data, tagging what has no plain form of its own.

    Parameters
    ----------
    value : object
        A parameter or attribute value.
    where : str
        What holds it, for messages (``"parameter 'device'"``).
    params : dict or None
        The estimator's parameters: a random state that is one of them (as
        ``_random_state`` is when ``random_state`` is a RandomState) is stored
        as a reference to it, so that the two stay one object.

    Returns
    -------
    object
        None, bool, int, float, str, a list, a dict with string keys, a NumPy
        array of numbers, a tagged dict, or a :class:`PickleOnly`:

        - ``{"__skae__": "tuple", "items": [...]}``
        - ``{"__skae__": "dict", "items": [[key, value], ...]}`` (keys str or int)
        - ``{"__skae__": "scalar", "dtype": "float32", "value": 1.5}``
        - ``{"__skae__": "str_array", "dtype": "|O", "items": [...]}``
        - ``{"__skae__": "tensor", "array": array}``
        - ``{"__skae__": "device", "value": "cuda:0"}``
        - ``{"__skae__": "random_state", "state": {...}}`` (``get_state(legacy=False)``)
        - ``{"__skae__": "param", "name": "random_state"}``
        - ``{"__skae__": "estimator", "class": "sklearn.mixture.GaussianMixture",
          "params": {...}}``
    """
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind is list:
        if _all_scalars(value):  # loss_curve_ may be long: no call per item
            return list(value)
        return [to_plain(item, f"{where}[{i}]", params) for i, item in enumerate(value)]
    if kind is tuple:
        return {TAG: "tuple", "items": [to_plain(item, f"{where}[{i}]", params) for i, item in enumerate(value)]}
    if kind is dict:
        if all(type(key) is str for key in value) and TAG not in value:
            return {key: to_plain(item, f"{where}[{key!r}]", params) for key, item in value.items()}
        if all(type(key) in (str, int) for key in value):
            items = [[key, to_plain(item, f"{where}[{key!r}]", params)] for key, item in value.items()]
            return {TAG: "dict", "items": items}
    elif isinstance(value, np.generic) and _plain_number_dtype(value.dtype):
        return {TAG: "scalar", "dtype": value.dtype.name, "value": value.item()}
    elif kind is np.ndarray:
        if _plain_number_dtype(value.dtype):
            return np.array(value, dtype=value.dtype.newbyteorder("="), order="C", copy=True)
        if value.dtype.kind == "U" or (value.dtype.kind == "O" and all(type(item) is str for item in value.flat)):
            return {TAG: "str_array", "dtype": value.dtype.str, "items": value.tolist()}
    elif isinstance(value, torch.Tensor) and not isinstance(value, torch.nn.Parameter):
        array = _array(value)
        if array is not None:
            return {TAG: "tensor", "array": array}
    elif kind is torch.device:
        return {TAG: "device", "value": str(value)}
    elif kind is np.random.RandomState:
        for name, param in (params or {}).items():
            if param is value:
                return {TAG: "param", "name": name}
        state = value.get_state(legacy=False)
        if state["bit_generator"] in _BIT_GENERATORS:
            return {TAG: "random_state", "state": to_plain(state, where)}
    else:
        # By its public path: the class's own __module__ is private (sklearn.mixture._gaussian_mixture).
        path = next((path for path, cls in _ESTIMATORS.items() if cls is kind), None)
        if path is not None:
            return {TAG: "estimator", "class": path, "params": to_plain(value.get_params(deep=False), where)}
    return PickleOnly(value, where)


_SCALAR_TYPES = frozenset({type(None), bool, int, float, str})


def _all_scalars(items):
    """Whether every item of the list ``items`` is None, a bool, an int, a float or a str."""
    return set(map(type, items)) <= _SCALAR_TYPES


def _plain_number_dtype(dtype):
    # Booleans, integers and floats up to 64 bits: what .skae files, JSON and every
    # NumPy build hold exactly (long doubles and complex numbers are not).
    return dtype.kind in "biuf" and dtype.itemsize <= 8


def _array(tensor):
    """A CPU copy of ``tensor`` as a NumPy array, or None for dtypes NumPy lacks (bfloat16)."""
    tensor = tensor.detach()
    try:
        array = tensor.to("cpu", copy=True).numpy()
    except TypeError:
        return None
    return array if _plain_number_dtype(array.dtype) else None


def estimator_state(estimator):
    """The plain-data state of a skae estimator (what ``__getstate__`` returns).

    Parameters
    ----------
    estimator : AutoencoderTransformer or VAETransformer
        Fitted or not.

    Returns
    -------
    dict
        The layout described in this module's docstring. The state shares no
        memory with the estimator: arrays are copies, on the CPU.
    """
    params = estimator.get_params(deep=False)
    instance = vars(estimator)
    state = {
        "skae_state": STATE_VERSION,
        "params": {name: to_plain(value, f"parameter {name!r}") for name, value in params.items()},
        "attributes": {},
        "networks": None,
        "optimizer": None,
    }
    for name, value in instance.items():
        where = f"attribute {name!r}"
        if name in params or name in NETWORKS:
            continue
        if name == _OPTIMIZER:
            state["optimizer"] = to_plain(value, where)
        else:
            state["attributes"][name] = to_plain(value, where, params)
    if any(name in instance for name in NETWORKS):
        built = estimator._empty_networks()
        state["networks"] = {
            name: _network_state(instance.get(name), expected, f"attribute {name!r}")
            for name, expected in zip(NETWORKS, built)
        }
    return state


def _network_state(network, expected, where):
    """The weights of a network skae built, or the network itself for pickle alone."""
    if expected is not None and isinstance(network, torch.nn.Module):
        weights = network.state_dict()
        shapes = {key: tuple(tensor.shape) for key, tensor in expected.state_dict().items()}
        if shapes == {key: tuple(tensor.shape) for key, tensor in weights.items()}:
            arrays = {key: _array(tensor) for key, tensor in weights.items()}
            if all(array is not None and array.dtype in _WEIGHT_DTYPES for array in arrays.values()):
                return arrays
    # A user's own network (or one replaced after fit): kept whole, on the CPU, so
    # that a GPU-trained model unpickles on a machine without one.
    if isinstance(network, torch.nn.Module):
        on_cpu = all(tensor.device.type == "cpu" for tensor in network.state_dict().values())
        network = network if on_cpu else _cpu_copy(network)
    return PickleOnly(network, where)


def _cpu_copy(network):
    return copy.deepcopy(network).cpu()


# --------------------------------------------------------------- from plain data


class _Reader:
    """Turns plain data back into values, refusing anything :func:`to_plain` would not write."""

    def __init__(self, params):
        self.params = params

    def fail(self, where, why):
        raise InvalidStateError(f"{where} {why}")

    def value(self, value, where, depth=0):
        kind = type(value)
        if value is None or kind in (bool, int, float, str):
            return value
        if depth >= MAX_DEPTH:
            self.fail(where, f"nests values more than {MAX_DEPTH} levels deep")
        depth += 1
        if kind is list:
            if _all_scalars(value):
                return list(value)
            return [self.value(item, f"{where}[{i}]", depth) for i, item in enumerate(value)]
        if isinstance(value, np.ndarray):  # joblib may hand over read-only memmaps
            if not _plain_number_dtype(value.dtype):
                self.fail(where, f"holds an array of dtype {value.dtype}")
            return np.array(value, dtype=value.dtype.newbyteorder("="), copy=True)
        if kind is PickleOnly:  # only pickle and copy can hand one over
            return value.value
        if kind is not dict:
            self.fail(where, f"holds a {kind.__name__}")
        if any(type(key) is not str for key in value):
            self.fail(where, "holds a dict with keys that are not strings")
        if TAG not in value:
            return {key: self.value(item, f"{where}[{key!r}]", depth) for key, item in value.items()}
        tag = value[TAG]
        read = self._TAGS.get(tag) if isinstance(tag, str) else None
        if read is None:
            self.fail(where, f"has an unknown type tag {tag!r}")
        try:
            return read(self, value, where, depth)
        except InvalidStateError:
            raise
        except (KeyError, TypeError, ValueError, RuntimeError, OverflowError, IndexError) as exc:
            self.fail(where, f"holds a malformed {tag!r} value ({type(exc).__name__}: {exc})")

    def _tuple(self, value, where, depth):
        self._keys(value, where, "items")
        items = value["items"]
        if type(items) is not list:
            self.fail(where, "holds a tuple whose items are not a list")
        return tuple(self.value(items, where, depth))

    def _dict(self, value, where, depth):
        self._keys(value, where, "items")
        items = value["items"]
        if type(items) is not list or any(type(pair) not in (list, tuple) or len(pair) != 2 for pair in items):
            self.fail(where, "holds a dict whose items are not a list of (key, value) pairs")
        result = {}
        for key, item in items:
            if type(key) not in (str, int) or key in result:
                self.fail(where, f"has a key {key!r} that is not a new string or integer")
            result[key] = self.value(item, f"{where}[{key!r}]", depth)
        return result

    def _scalar(self, value, where, depth):
        self._keys(value, where, "dtype", "value")
        dtype = np.dtype(value["dtype"])
        number = value["value"]
        if not _plain_number_dtype(dtype) or type(number) not in (bool, int, float):
            self.fail(where, f"has a scalar {number!r} of dtype {value['dtype']!r}")
        return dtype.type(number)

    def _str_array(self, value, where, depth):
        self._keys(value, where, "dtype", "items")
        items = value["items"]
        if type(items) is not list or not all(type(item) is str for item in items):
            self.fail(where, "is not a 1-D array of strings")
        dtype = np.dtype(value["dtype"])
        # The width of a "U" dtype is declared, not read: no wider than the longest
        # item, so that a short list cannot make the reader allocate gigabytes.
        longest = max(map(len, items), default=0)
        if dtype.kind not in "UO" or (dtype.kind == "U" and dtype.itemsize > 4 * max(1, longest)):
            self.fail(where, f"declares dtype {value['dtype']!r} for strings of at most {longest} characters")
        return np.array(items, dtype=dtype)

    def _tensor(self, value, where, depth):
        self._keys(value, where, "array")
        array = value["array"]
        if not isinstance(array, np.ndarray):
            self.fail(where, "holds a tensor that is not an array")
        return torch.from_numpy(self.value(array, where, depth))

    def _device(self, value, where, depth):
        self._keys(value, where, "value")
        if type(value["value"]) is not str:
            self.fail(where, "holds a device whose name is not a string")
        return torch.device(value["value"])

    def _random_state(self, value, where, depth):
        self._keys(value, where, "state")
        state = self.value(value["state"], where, depth)
        name = state.get("bit_generator") if type(state) is dict else None
        bit_generator = _BIT_GENERATORS.get(name) if isinstance(name, str) else None
        if bit_generator is None:
            self.fail(where, f"names an unknown bit generator {name!r}")
        random_state = np.random.RandomState(bit_generator())
        _schema.check_random_state(state, random_state.get_state(legacy=False), where)
        random_state.set_state(state)
        return random_state

    def _param(self, value, where, depth):
        self._keys(value, where, "name")
        name = value["name"]
        if not isinstance(name, str) or name not in self.params:
            self.fail(where, f"refers to an unknown parameter {name!r}")
        return self.params[name]

    def _estimator(self, value, where, depth):
        self._keys(value, where, "class", "params")
        cls = _ESTIMATORS.get(value["class"]) if isinstance(value["class"], str) else None
        if cls is None:
            self.fail(where, f"names an estimator class skae does not store: {value['class']!r}")
        params = self.value(value["params"], where, depth)
        if not isinstance(params, dict):
            self.fail(where, "holds estimator parameters that are not a dict")
        estimator = cls(**params)
        estimator._validate_params()
        return estimator

    def _keys(self, value, where, *keys):
        if set(value) != {TAG, *keys}:
            self.fail(where, f"holds a {value[TAG]!r} value with keys {sorted(value)}, not {sorted({TAG, *keys})}")

    _TAGS = {
        "tuple": _tuple,
        "dict": _dict,
        "scalar": _scalar,
        "str_array": _str_array,
        "tensor": _tensor,
        "device": _device,
        "random_state": _random_state,
        "param": _param,
        "estimator": _estimator,
    }


def restore_estimator(estimator, state, device=None):
    """Set ``estimator`` (of the class that wrote ``state``) to ``state``.

    The one place a state enters an estimator: ``__setstate__`` and
    :func:`skae.load` call it. The estimator is changed only once the whole
    state has been read.

    Parameters
    ----------
    estimator : AutoencoderTransformer or VAETransformer
        Usually a bare instance made by ``cls.__new__``.
    state : dict
        What :func:`estimator_state` returned, or the same data read back.
    device : str, torch.device or None, default=None
        Where to put the networks. None uses the device they were fitted on
        when this machine has it, else the CPU.

    Raises
    ------
    InvalidStateError
        If the state is not one skae writes (a ValueError that names the field).
    ValueError
        If ``device`` is given but not available.
    """
    cls = type(estimator)
    if not isinstance(state, dict) or "skae_state" not in state:
        raise InvalidStateError(
            f"the state is not a skae {cls.__name__}'s (pickles written before skae's state "
            "format existed cannot be read; refit the model)"
        )
    version = state["skae_state"]
    if type(version) is not int or version != STATE_VERSION:
        raise InvalidStateError(
            f"the state has layout version {version!r}; this skae reads version {STATE_VERSION}"
        )
    unknown = set(state) - _SECTIONS
    if unknown:
        raise InvalidStateError(f"the state has unknown sections {sorted(map(str, unknown))}")
    for section in ("params", "attributes"):
        if not isinstance(state.get(section), dict):
            raise InvalidStateError(f"the state's {section!r} section is missing or not a dict")

    networks = state.get("networks")
    if networks is None and state.get("optimizer") is not None:
        raise InvalidStateError("the state has an optimizer state but no networks")

    scratch = cls.__new__(cls)
    params = _read_params(cls, state["params"])
    scratch.__dict__.update(params)
    reader = _Reader(params)
    attributes = {}
    for name, value in state["attributes"].items():
        # Known names only, before decoding: the schema lists every attribute skae stores.
        if type(name) is not str or name not in _schema.ATTRIBUTES:
            raise InvalidStateError(f"attribute {str(name)[:100]!r} is not an attribute skae stores")
        attributes[name] = reader.value(value, f"attribute {name!r}")
    _schema.check_attributes(cls, attributes, fitted=networks is not None)
    scratch.__dict__.update(attributes)

    if networks is not None:
        _restore_networks(scratch, networks, device)
        optimizer = state.get("optimizer")
        if optimizer is not None:
            optimizer = reader.value(optimizer, "the optimizer state")
            _schema.check_optimizer_state(optimizer, list(scratch._engine_model().parameters()))
        scratch._optimizer_state = optimizer

    estimator.__dict__.clear()
    estimator.__dict__.update(scratch.__dict__)


def _read_params(cls, plain_params):
    """The parameters, decoded and validated; defaults for those the state lacks."""
    names = cls._get_param_names()
    unknown = sorted(set(plain_params) - set(names), key=str)
    if unknown:
        raise InvalidStateError(f"the state holds invalid parameters: {cls.__name__} has no parameter {unknown[0]!r}")
    reader = _Reader({})
    params = cls().get_params(deep=False)  # a state from an older skae lacks newer parameters
    params.update({name: reader.value(value, f"parameter {name!r}") for name, value in plain_params.items()})
    checker = cls(**params)
    try:
        checker._validate_params()
        _schema.check_params(params)
    except (TypeError, ValueError) as exc:
        raise InvalidStateError(f"the state holds invalid parameters: {exc}") from None
    return params


def _restore_networks(estimator, networks, device):
    """Rebuild the fitted networks from their weights, on ``device`` (see restore_estimator)."""
    if not isinstance(networks, dict) or set(networks) != set(NETWORKS):
        names = sorted(map(str, networks)) if isinstance(networks, dict) else type(networks).__name__
        raise InvalidStateError(f"the state's networks are {names!r}, not the encoder and decoder")
    weights = [value for value in networks.values() if type(value) is dict]
    if weights:  # networks skae built: check the sizes they declare before building them
        n_weights = sum(array.size for arrays in weights for array in arrays.values() if isinstance(array, np.ndarray))
        _schema.check_network_sizes(
            estimator._fitted_architecture_params(), estimator.n_features_in_, estimator.image_shape_, n_weights
        )
    try:
        expected = estimator._empty_networks()
    except (TypeError, ValueError, RuntimeError, AttributeError, IndexError, KeyError) as exc:
        raise InvalidStateError(f"the state's fitted architecture cannot be built ({exc})") from None
    for name, empty in zip(NETWORKS, expected):
        value = networks[name]
        where = f"network {name!r}"
        if type(value) is PickleOnly and isinstance(value.value, torch.nn.Module):
            network = value.value
        elif type(value) is dict and empty is not None:
            network = _load_weights(empty, value, where)
        elif empty is None:
            raise InvalidStateError(f"{where} is a user-supplied module, which the state cannot hold")
        else:
            raise InvalidStateError(f"{where} holds a {type(value).__name__}, not its weights")
        setattr(estimator, name, network)

    fitted_on = estimator.device_  # a torch.device of a known type (see _schema)
    if device is not None:
        target = resolve_device(device)
    else:
        try:
            target = resolve_device(fitted_on)
        except ValueError:  # fitted on a device this machine lacks: the CPU, as unpickling does
            target = torch.device("cpu")
    estimator.device_ = target
    for name in NETWORKS:
        getattr(estimator, name).to(target)


def _load_weights(network, weights, where):
    """``network`` (on the meta device) with ``weights`` (arrays) as its parameters and buffers."""
    tensors = {}
    for key, array in weights.items():
        if type(key) is not str:
            raise InvalidStateError(f"{where} has weights named {key!r}, not by a string")
        if not isinstance(array, np.ndarray) or array.dtype not in _WEIGHT_DTYPES:
            kind = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
            raise InvalidStateError(f"{where} has weights {key!r} of type {kind}, not float32 or float64")
        tensors[key] = torch.from_numpy(np.array(array, copy=True))
    try:
        network.load_state_dict(tensors, strict=True, assign=True)
    except RuntimeError as exc:
        raise InvalidStateError(f"{where} does not match its architecture ({exc})") from None
    _schema.check_weights(network, where)
    network.eval()
    return network

