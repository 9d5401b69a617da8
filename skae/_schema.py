"""What a loaded state may hold: every value known, typed, shaped and in range.

:func:`skae._state.restore_estimator` (the one way a state enters an
estimator, from pickle, joblib, skops and ``.skae`` files alike) checks the
state here in stages, each before anything uses what it checks:

1. :func:`check_attributes`: every instance attribute against
   :data:`ATTRIBUTES`, the one table of rules (a name not in it is refused);
2. :func:`check_network_sizes`: the sizes the fitted architecture declares,
   against the number of weights the state holds, before a network is built;
3. :func:`check_weights`: each network's weights (dtype, finiteness, the
   standardising scale);
4. :func:`check_optimizer_state`: the Adam state against the parameters of the
   networks it will update (shapes, dtypes, step counters, settings).

Shapes are derived from the state itself (the fitted architecture and
``n_features_in_``) and from the estimator class, never from the current
parameters, which ``set_params`` may have changed since the fit. A failed
check raises :class:`InvalidStateError`, a ValueError that names the field.
"""

import functools
import math
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import torch

from ._images import as_chw
from .engine.networks import Standardize
from .engine.trainer import make_optimizer

__all__ = [
    "ATTRIBUTES",
    "Attribute",
    "InvalidStateError",
    "PARAMETERS",
    "check_attributes",
    "check_network_sizes",
    "check_optimizer_state",
    "check_params",
    "check_random_state",
    "check_weights",
]

# The largest step count a float32 counter reaches by adding 1 (torch keeps Adam's
# step as a float32 tensor): 2**24 + 1 rounds back to 2**24.
_MAX_ADAM_STEP = 2**24


class InvalidStateError(ValueError):
    """A state that is not one skae could have written; names the bad field."""


def _fail(where, why):
    raise InvalidStateError(f"{where} {why}")


# ------------------------------------------------------------------ value rules
# Each rule is ``rule(value, where, context)`` and raises InvalidStateError.


class _Context:
    """What the rules may refer to: the class and the attributes checked so far."""

    def __init__(self, cls, attributes):
        self.cls = cls
        self.attributes = attributes

    def get(self, name):
        return self.attributes.get(name)

    @property
    def architecture(self):
        """The fitted architecture as ``{parameter name: value}`` (checked before the rules that use it)."""
        return dict(zip(self.cls._ARCHITECTURE_PARAMETERS, self.attributes["_fitted_architecture"]))


def _is_integer(value):
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))


def _is_real(value):
    return isinstance(value, Real) and not isinstance(value, (bool, np.bool_))


def integer(low, high=None):
    """An integer (not a bool) in ``[low, high]``."""

    def rule(value, where, context):
        if not _is_integer(value):
            _fail(where, f"must be an integer, got {value!r}")
        if value < low or (high is not None and value > high):
            _fail(where, f"must be an integer in [{low}, {high if high is not None else 'inf'}], got {value}")

    return rule


def real(positive=False):
    """A finite real number (not a bool), positive if asked."""

    def rule(value, where, context):
        if not _is_real(value) or not math.isfinite(value):
            _fail(where, f"must be a finite number, got {value!r}")
        if positive and not value > 0:
            _fail(where, f"must be positive, got {value!r}")

    return rule


def _real_list(value, where, context):
    if type(value) is not list:
        _fail(where, "must be a list of finite numbers")
    # Python floats in the common case (a long loss_curve_): checked without a call per item.
    floats = set(map(type, value)) <= {float}
    if not (floats or all(_is_real(item) for item in value)) or not all(map(math.isfinite, value)):
        _fail(where, "must be a list of finite numbers")


def optional(rule):
    """None, or a value that satisfies ``rule``."""

    def check(value, where, context):
        if value is not None:
            rule(value, where, context)

    return check


def instance_of(kind):
    def rule(value, where, context):
        if type(value) is not kind:
            _fail(where, f"must be a {kind.__module__}.{kind.__qualname__}, got a {type(value).__name__}")

    return rule


ANY = None  # a size float_array accepts whatever it is


def float_array(*shape, check=None):
    """A finite float64 array; ``shape`` entries are ints, ANY, or callables of the context."""

    def rule(value, where, context):
        if type(value) is not np.ndarray or value.dtype != np.float64:
            kind = value.dtype if isinstance(value, np.ndarray) else type(value).__name__
            _fail(where, f"must be a float64 array, got {kind}")
        expected = tuple(
            actual if size is ANY else size(context) if callable(size) else size
            for size, actual in zip(shape, value.shape)
        )
        if value.shape != expected or value.ndim != len(shape):
            _fail(where, f"must have shape {expected}, got {value.shape}")
        if not np.isfinite(value).all():
            _fail(where, "holds values that are not finite")
        if check is not None:
            check(value, where)

    return rule


def _n_codes(context):
    return context.get("n_components_")


def _n_mixture(context):
    return len(context.get("latent_weights_"))


def _symmetric(value, where):
    if not np.allclose(value, np.swapaxes(value, -1, -2), rtol=1e-10, atol=0):
        _fail(where, "must hold symmetric covariance matrices")
    if (np.diagonal(value, axis1=-2, axis2=-1) < 0).any():
        _fail(where, "must hold covariance matrices with a non-negative diagonal")


def _mixture_weights(value, where):
    if len(value) < 1 or (value < 0).any() or not value.sum() > 0:
        _fail(where, "must hold at least one non-negative weight with a positive sum")


def _fitted_architecture(value, where, context):
    """A tuple that ``_architecture()`` could have returned for valid parameters."""
    names = context.cls._ARCHITECTURE_PARAMETERS
    if type(value) is not tuple or len(value) != len(names):
        _fail(where, f"must be a tuple of {len(names)} entries ({', '.join(names)})")
    fitted = dict(zip(names, value))
    for name in ("encoder", "decoder"):
        description = fitted.pop(name)  # the user's module, by its repr (see _user_networks)
        if description is not None and type(description) is not str:
            _fail(where, f"has a {name} entry that is neither None nor a module's description")
    if fitted["conv_channels"] is None:
        if fitted["architecture"] == "conv":
            _fail(where, 'has no conv_channels for architecture="conv"')
        del fitted["conv_channels"]
    try:
        builder = context.cls(**fitted)
        builder._validate_params()
        rebuilt = builder._architecture()
    except (TypeError, ValueError) as exc:
        _fail(where, f"holds invalid parameters ({exc})")
    if rebuilt[: len(names) - 2] != value[: len(names) - 2]:
        _fail(where, f"is not in the form fit writes: {value!r}")


def _n_components(value, where, context):
    integer(1)(value, where, context)
    if value != context.architecture["n_components"]:
        _fail(where, f"is {value}, but the fitted architecture has n_components={context.architecture['n_components']}")


def _image_shape(value, where, context):
    architecture = context.architecture
    if value is None:
        if architecture["architecture"] == "conv" or architecture["image_shape"] is not None:
            _fail(where, "is None, but the fitted architecture takes images")
        return
    if type(value) is not tuple or len(value) not in (2, 3) or not all(_is_integer(s) and s >= 1 for s in value):
        _fail(where, f"must be None, (H, W) or (C, H, W) with positive integers, got {value!r}")
    n_features = context.get("n_features_in_")
    if math.prod(value) != n_features:
        _fail(where, f"is {value}, which does not hold n_features_in_={n_features} values")
    fitted = architecture["image_shape"]
    if fitted is not None and as_chw(fitted) != as_chw(value):
        _fail(where, f"is {value}, but the estimator was fitted with image_shape={fitted}")


def _feature_names(value, where, context):
    if type(value) is not np.ndarray or value.ndim != 1 or not all(type(name) is str for name in value):
        _fail(where, "must be a 1-D array of strings")
    n_features = context.get("n_features_in_")
    if n_features is not None and len(value) != n_features:
        _fail(where, f"has {len(value)} names, but n_features_in_={n_features}")


def _loss_curve(value, where, context):
    _real_list(value, where, context)
    if len(value) != context.get("n_iter_"):
        _fail(where, f"has {len(value)} entries, but n_iter_={context.get('n_iter_')}")


def _best_loss(value, where, context):
    real()(value, where, context)
    curve = context.get("loss_curve_")
    if curve and value != min(curve):
        _fail(where, f"is {value!r}, not the lowest value in loss_curve_ ({min(curve)!r})")


def _best_validation_score(value, where, context):
    scores = context.get("validation_scores_")
    best = max(scores) if scores else None
    # Type first: an array's != has no single truth value.
    if not _is_plain_setting(value, best) or value != best:
        _fail(where, f"is {value!r}, but the highest validation score is {best!r}")


def _observation_variance(value, where, context):
    if context.architecture["reconstruction_loss"] == "bce":
        if value is not None:
            _fail(where, f'must be None for reconstruction_loss="bce", got {value!r}')
        return
    real(positive=True)(value, where, context)
    floor = context.get("_min_observation_variance")
    if floor is not None and value < floor:
        _fail(where, f"is {value!r}, below its floor _min_observation_variance={floor!r}")


def _device(value, where, context):
    instance_of(torch.device)(value, where, context)
    if value.type not in ("cpu", "cuda", "mps"):
        _fail(where, f"names a device of type {value.type!r}; skae fits on 'cpu', 'cuda' and 'mps'")


def _output_config(value, where, context):
    if type(value) is not dict or len(value) > 8:
        _fail(where, "must be a small dict")
    for key, item in value.items():
        if type(key) is not str or type(item) is not str or len(key) > 64 or len(item) > 64:
            _fail(where, f"must map method names to output containers, got {key!r}: {item!r}")


def check_random_state(state, template, where):
    """Check a RandomState's state against ``template``, a fresh one's of the same bit generator.

    The same keys, types, array shapes and dtypes, and positions within their
    buffers: NumPy takes an MT19937 position past the end of its key (or a
    Philox buffer position past its buffer) as it is, and reads beyond it.
    """
    if type(state) is not dict or set(state) != set(template):
        _fail(where, f"must hold a random state with keys {sorted(template)}")
    for key, value in state.items():
        expected = template[key]
        at = f"{where}[{key!r}]"
        if type(expected) is dict:
            check_random_state(value, expected, at)
        elif type(expected) is np.ndarray:
            if type(value) is not np.ndarray or value.shape != expected.shape or value.dtype != expected.dtype:
                _fail(at, f"must be an array of shape {expected.shape} and dtype {expected.dtype}")
        elif type(expected) is str:
            if value != expected:
                _fail(at, f"must be {expected!r}")
        elif type(expected) is float:
            if type(value) is not float or not math.isfinite(value):
                _fail(at, "must be a finite float")
        else:
            high = _RANDOM_STATE_BOUNDS.get(key, lambda template: 2**128 - 1)(template)
            integer(0, high)(value, at, None)


# The largest value of integer fields of a bit generator's state (others: 128 bits).
_RANDOM_STATE_BOUNDS = {
    "pos": lambda template: len(template["key"]),
    "buffer_pos": lambda template: len(template["buffer"]),
    "has_gauss": lambda template: 1,
    "has_uint32": lambda template: 1,
    "uinteger": lambda template: 2**32 - 1,
}


# ------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Attribute:
    """The rule for one instance attribute.

    Attributes
    ----------
    rule : callable
        ``rule(value, where, context)``; raises InvalidStateError.
    classes : frozenset of str or None
        Names of the estimator classes that have it; None for all of them.
    before_fit : bool
        Also held by an estimator that has no networks: set by ``set_output``,
        or by a fit that stopped before training (``validate_data`` sets
        ``n_features_in_`` first).
    required : bool
        Every fitted estimator (of ``classes``) has it.
    """

    rule: object
    classes: frozenset = None
    before_fit: bool = False
    required: bool = True


_AE = frozenset({"AutoencoderTransformer"})
_VAE = frozenset({"VAETransformer"})

#: Every attribute a state may hold, in the order they are checked (a rule may
#: refer to the attributes above it). New fitted attributes get an entry here;
#: ``tests/test_state.py`` round-trips fitted estimators, so one that lacks an
#: entry shows up at once as "not an attribute skae stores".
ATTRIBUTES = {
    "_sklearn_output_config": Attribute(_output_config, before_fit=True, required=False),
    "n_features_in_": Attribute(integer(1), before_fit=True),
    "feature_names_in_": Attribute(_feature_names, before_fit=True, required=False),
    "_data_scale": Attribute(real(positive=True), before_fit=True),
    "_min_observation_variance": Attribute(real(positive=True), classes=_VAE, before_fit=True),
    "_fitted_architecture": Attribute(_fitted_architecture),
    "n_components_": Attribute(_n_components),
    "image_shape_": Attribute(_image_shape),
    "device_": Attribute(_device),
    "_random_state": Attribute(instance_of(np.random.RandomState)),
    "n_iter_": Attribute(integer(0)),
    "loss_curve_": Attribute(_loss_curve),
    "best_loss_": Attribute(_best_loss),
    "validation_scores_": Attribute(optional(_real_list)),
    "best_validation_score_": Attribute(_best_validation_score),
    "observation_variance_": Attribute(_observation_variance, classes=_VAE),
    "latent_mean_": Attribute(float_array(_n_codes), classes=_AE),
    "latent_covariance_": Attribute(float_array(_n_codes, _n_codes, check=_symmetric), classes=_AE),
    "latent_weights_": Attribute(float_array(ANY, check=_mixture_weights), classes=_AE),
    "latent_means_": Attribute(float_array(_n_mixture, _n_codes), classes=_AE),
    "latent_covariances_": Attribute(float_array(_n_mixture, _n_codes, _n_codes, check=_symmetric), classes=_AE),
}


def check_attributes(cls, attributes, fitted):
    """Check every attribute of a state against :data:`ATTRIBUTES`.

    Parameters
    ----------
    cls : type
        The estimator class.
    attributes : dict
        Attribute name to decoded value.
    fitted : bool
        Whether the state has networks. A fitted state must hold every
        required attribute; an unfitted one only those set before training.

    Raises
    ------
    InvalidStateError
        Naming the first attribute that is unknown, missing or invalid.
    """
    # A user's subclass stores what the skae class it derives from stores.
    lineage = {base.__name__ for base in cls.__mro__}
    applicable = {
        name: spec
        for name, spec in ATTRIBUTES.items()
        if (spec.classes is None or spec.classes & lineage) and (fitted or spec.before_fit)
    }
    for name in attributes:
        if name not in applicable:
            state = "a fitted" if fitted else "an unfitted"
            _fail(f"attribute {name!r}", f"is not an attribute skae stores for {state} {cls.__name__}")
    if fitted:
        missing = [name for name, spec in applicable.items() if spec.required and name not in attributes]
        if missing:
            _fail("the state", f"has networks but lacks the fitted attribute {missing[0]!r}")
    context = _Context(cls, attributes)
    for name, spec in applicable.items():
        if name in attributes:
            spec.rule(attributes[name], f"attribute {name!r}", context)


# ------------------------------------------------------------------ parameters


def _device_name(value, where, context):
    if isinstance(value, str) and value != "auto":
        try:
            torch.device(value)
        except (RuntimeError, ValueError, TypeError):
            _fail(where, f"is {value[:100]!r}, not a device name torch understands")


#: Rules for parameters beyond what the class's ``_parameter_constraints`` check
#: (those are checked by the class itself, for every parameter it has).
PARAMETERS = {"device": _device_name}


def check_params(params):
    """Check ``params`` (already valid for their class) against :data:`PARAMETERS`."""
    for name, rule in PARAMETERS.items():
        if name in params:
            rule(params[name], f"parameter {name!r}", None)


# ------------------------------------------------------------------ networks


def check_network_sizes(architecture, n_features, image_shape, n_weights):
    """Refuse declared sizes that the state's weights cannot hold, before anything is built.

    Every layer width, image side, the number of features and of layers is at
    most the number of weights of a network that has it, so a state whose
    declared sizes exceed ``n_weights`` (the number of values in its weight
    arrays) cannot be valid, and building its networks could exhaust memory.
    """
    sizes = {
        "n_features_in_": n_features,
        "n_components": architecture["n_components"],
        "the number of hidden layers": len(architecture["hidden_layer_sizes"]),
        **{f"hidden layer {i}": size for i, size in enumerate(architecture["hidden_layer_sizes"])},
        **{f"conv layer {i}": size for i, size in enumerate(architecture["conv_channels"] or ())},
        **{f"image side {i}": size for i, size in enumerate(image_shape or ())},
    }
    for name, size in sizes.items():
        if size > n_weights:
            _fail("the state's fitted architecture", f"declares {name} = {size}, more than its {n_weights} weights")


def check_weights(network, where):
    """Refuse weights of mixed dtypes, non-finite weights and a standardising scale that is not positive."""
    tensors = network.state_dict()
    dtypes = {tensor.dtype for tensor in tensors.values()}
    if len(dtypes) > 1:
        _fail(where, f"mixes weights of dtypes {sorted(map(str, dtypes))}")
    for key, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            _fail(where, f"has weights {key!r} that are not finite")
    for name, module in network.named_modules():
        if isinstance(module, Standardize) and not (module.scale > 0).all():
            _fail(where, f"has a standardising scale {name or 'scale'!r} that is not positive")


# ------------------------------------------------------------------ optimizer


@functools.lru_cache(maxsize=1)
def _adam_template():
    """``(settings, entry)``: one parameter group and one parameter's state of skae's optimiser after a step."""
    parameter = torch.zeros(2, requires_grad=True)
    optimizer = make_optimizer([parameter], 1e-3, torch.device("cpu"))
    parameter.grad = torch.zeros(2)
    optimizer.step()
    state = optimizer.state_dict()
    return state["param_groups"][0], state["state"][0]


def check_optimizer_state(state, parameters):
    """Check the Adam state against the parameters it will update, in order.

    Parameters
    ----------
    state : dict
        The decoded ``optimizer.state_dict()``.
    parameters : list of torch.Tensor
        The parameters of the engine model, in the order its optimiser gets them.

    Raises
    ------
    InvalidStateError
        If a key is unknown, a setting is not one skae's optimiser has, a step
        counter is not a count, or a moment does not match its parameter's
        shape and dtype (the fused Adam kernel reads them without checks).
    """
    where = "the optimizer state"
    if type(state) is not dict or set(state) != {"state", "param_groups"}:
        _fail(where, "must be a dict of 'state' and 'param_groups'")
    settings, entry = _adam_template()
    groups = state["param_groups"]
    if type(groups) is not list or len(groups) != 1 or type(groups[0]) is not dict:
        _fail(where, "must have one parameter group")
    _check_settings(groups[0], settings, len(parameters), f"{where}'s parameter group")
    moments = state["state"]
    if type(moments) is not dict:
        _fail(where, "has per-parameter state that is not a dict")
    for index, values in moments.items():
        at = f"{where}'s entry {index!r}"
        if not _is_integer(index) or not 0 <= index < len(parameters):
            _fail(at, f"does not name one of the {len(parameters)} parameters")
        if type(values) is not dict or set(values) != set(entry):
            _fail(at, f"must hold exactly {sorted(entry)}")
        parameter = parameters[index]
        for key, value in values.items():
            template = entry[key]
            if type(value) is not torch.Tensor:
                _fail(at, f"has {key!r} that is not a tensor")
            # Moments have their parameter's dtype, or float32 (skae trains in float32;
            # a network converted with .double() after fit keeps its state, which torch
            # casts on loading).
            shape, dtypes = (
                (template.shape, {template.dtype})
                if key == "step"
                else (parameter.shape, {torch.float32, parameter.dtype})
            )
            if value.shape != shape or value.dtype not in dtypes:
                _fail(
                    at,
                    f"has {key!r} of shape {tuple(value.shape)} and dtype {value.dtype}, but its parameter "
                    f"needs shape {tuple(shape)} and dtype {' or '.join(sorted(map(str, dtypes)))}",
                )
            if not torch.isfinite(value).all():
                _fail(at, f"has {key!r} values that are not finite")
        step = float(values["step"])
        if step != int(step) or not 1 <= step <= _MAX_ADAM_STEP:
            _fail(at, f"has a step counter {step!r} that is not a count of steps")
        if (values["exp_avg_sq"] < 0).any():
            _fail(at, "has a negative second moment")


def _is_plain_setting(value, expected):
    """Whether ``value`` has ``expected``'s plain type (tuples item by item), so that ``==``
    between them is a plain comparison; a bool is not taken for a number."""
    if isinstance(expected, tuple):
        return (
            type(value) is tuple
            and len(value) == len(expected)
            and all(map(_is_plain_setting, value, expected))
        )
    if expected is None or isinstance(expected, bool):
        return type(value) is type(expected)
    return type(value) in (int, float) and type(expected) in (int, float)


def _check_settings(group, template, n_parameters, where):
    unknown = sorted(set(group) - set(template), key=str)
    if unknown:
        _fail(where, f"has settings skae's optimiser does not have: {unknown}")
    params = group.get("params")
    if type(params) is not list or any(type(i) is not int for i in params) or params != list(range(n_parameters)):
        _fail(where, f"must list the network's {n_parameters} parameters in order")
    for key, value in group.items():
        if key == "params":
            continue
        if key == "lr":
            real(positive=True)(value, f"{where}'s learning rate", None)
        elif key in ("fused", "foreach"):
            if type(value) not in (bool, type(None)):
                _fail(where, f"has {key}={value!r}, not None or a bool")
        elif not _is_plain_setting(value, template[key]) or value != template[key]:
            _fail(where, f"has {key}={value!r}, but skae's optimiser uses {template[key]!r}")
    if group.get("fused") and group.get("foreach"):
        _fail(where, "has both fused and foreach set")
