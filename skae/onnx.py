"""Export fitted skae estimators to ONNX, to serve them without Python or torch.

``import skae.onnx`` registers converters with
`skl2onnx <https://onnx.ai/sklearn-onnx/>`_, so that
``skl2onnx.to_onnx(model, X[:1].astype(np.float32))`` exports ``transform``
of an :class:`~skae.AutoencoderTransformer` or :class:`~skae.VAETransformer`
(the VAE's posterior mean), alone or inside a Pipeline, ColumnTransformer or
FeatureUnion. :func:`inverse_transform_to_onnx` exports the decoder
(``inverse_transform``) as a model of its own.

The graph is written directly from the fitted weights, layer by layer, with
``onnx.helper``, rather than traced with ``torch.onnx.export``: skae's
networks are made of a handful of layer types, each one ONNX operator or two,
so the export needs neither onnxscript nor a trace, gives the same graph on
every run, and states exactly what it cannot convert. Networks the user
supplied (``encoder=``, ``decoder=``) are converted too when they are made of
the same layers; anything else is a ValueError that names the module.

Install the dependencies with ``pip install "skae[onnx]"`` (onnx, onnxruntime
and skl2onnx).
"""

import math

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted
from torch import nn

try:
    import onnx
    from onnx import helper, numpy_helper
    from skl2onnx import get_latest_tested_opset_version, update_registered_converter
    from skl2onnx.common.data_types import guess_numpy_type
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        f"skae.onnx needs onnx and skl2onnx ({exc}); install them with: pip install 'skae[onnx]'"
    ) from exc

from . import __version__
from .autoencoder import AutoencoderTransformer
from .engine.networks import GaussianEncoder, Standardize, Unstandardize
from .vae import VAETransformer

__all__ = ["inverse_transform_to_onnx"]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# ONNX operators the graphs use all have their current meaning from opset 13 on.
_MIN_OPSET = 13


class _Unconvertible(Exception):
    """A module the converter has no ONNX form for; ``where`` says which."""


# ------------------------------------------------------------------ graphs


class _Graph:
    """Where a network's nodes go; names every value it creates.

    Subclasses say how a constant and a node are added: to a skl2onnx
    container (a converter inside a larger model), or to a graph of their own.
    """

    def __init__(self, dtype):
        self.dtype = np.dtype(dtype)

    def weights(self, tensor, hint):
        """A constant holding a parameter or buffer, in the graph's dtype."""
        return self.constant(tensor.detach().cpu().numpy().astype(self.dtype), hint)

    def scalar(self, value, hint):
        return self.constant(np.asarray(value, dtype=self.dtype), hint)

    def integers(self, values, hint):
        return self.constant(np.asarray(values, dtype=np.int64), hint)

    def constant(self, array, hint):
        raise NotImplementedError

    def node(self, op_type, inputs, output=None, **attributes):
        """Add ``op_type`` on ``inputs``; return the name of its output."""
        raise NotImplementedError


class _ConverterGraph(_Graph):
    """Nodes added to a skl2onnx container, as a registered converter does."""

    def __init__(self, scope, container, dtype):
        super().__init__(dtype)
        self.scope = scope
        self.container = container

    def constant(self, array, hint):
        name = self.scope.get_unique_variable_name(hint)
        tensor = numpy_helper.from_array(np.ascontiguousarray(array), name)
        self.container.add_initializer(name, tensor.data_type, list(array.shape), tensor)
        return name

    def node(self, op_type, inputs, output=None, **attributes):
        output = output or self.scope.get_unique_variable_name(op_type.lower())
        name = self.scope.get_unique_operator_name(f"Skae{op_type}")
        self.container.add_node(op_type, list(inputs), [output], name=name, **attributes)
        return output


class _StandaloneGraph(_Graph):
    """Nodes and constants collected for a model of their own (see inverse_transform_to_onnx)."""

    def __init__(self, dtype):
        super().__init__(dtype)
        self.nodes = []
        self.initializers = []
        self._count = 0

    def _name(self, hint):
        self._count += 1
        return f"{hint}_{self._count}"

    def constant(self, array, hint):
        name = self._name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op_type, inputs, output=None, **attributes):
        output = output or self._name(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [output], name=self._name(op_type), **attributes))
        return output


# ------------------------------------------------------------------ layers


def _activation(graph, module, x):
    kind = type(module)
    if kind is nn.Identity:
        return x
    if kind is nn.ReLU:
        return graph.node("Relu", [x])
    if kind is nn.Tanh:
        return graph.node("Tanh", [x])
    if kind is nn.Sigmoid:
        return graph.node("Sigmoid", [x])
    if kind is nn.ELU:
        return graph.node("Elu", [x], alpha=float(module.alpha))
    if kind is nn.GELU and module.approximate == "none":
        # x * 0.5 * (1 + erf(x / sqrt(2))), as torch computes it.
        erf = graph.node("Erf", [graph.node("Mul", [x, graph.scalar(math.sqrt(0.5), "gelu_scale")])])
        half_x = graph.node("Mul", [x, graph.scalar(0.5, "gelu_half")])
        return graph.node("Mul", [half_x, graph.node("Add", [erf, graph.scalar(1.0, "gelu_one")])])
    if kind is nn.GELU and module.approximate == "tanh":
        cube = graph.node("Mul", [graph.node("Mul", [x, x]), x])
        inner = graph.node("Add", [x, graph.node("Mul", [cube, graph.scalar(0.044715, "gelu_cubic")])])
        tanh = graph.node("Tanh", [graph.node("Mul", [inner, graph.scalar(math.sqrt(2 / math.pi), "gelu_scale")])])
        half_x = graph.node("Mul", [x, graph.scalar(0.5, "gelu_half")])
        return graph.node("Mul", [half_x, graph.node("Add", [tanh, graph.scalar(1.0, "gelu_one")])])
    return None


def _pair(value):
    return list(value) if isinstance(value, tuple) else [value, value]


def _conv(graph, module, x, where):
    if module.padding_mode != "zeros" or isinstance(module.padding, str):
        raise _Unconvertible(f"{where} (a {type(module).__name__} with padding {module.padding!r}, "
                             f"padding_mode {module.padding_mode!r})")
    inputs = [x, graph.weights(module.weight, "conv_weight")]
    if module.bias is not None:
        inputs.append(graph.weights(module.bias, "conv_bias"))
    padding = _pair(module.padding)
    attributes = dict(
        kernel_shape=_pair(module.kernel_size),
        strides=_pair(module.stride),
        pads=padding + padding,
        dilations=_pair(module.dilation),
        group=module.groups,
    )
    if type(module) is nn.ConvTranspose2d:
        return graph.node("ConvTranspose", inputs, output_padding=_pair(module.output_padding), **attributes)
    return graph.node("Conv", inputs, **attributes)


def _network(graph, module, x, rank, where, n_components):
    """Add ``module``'s forward pass on ``x`` (of ``rank`` dimensions) to ``graph``.

    Returns the name and rank of the output. Converts skae's own layers and
    the torch layers its networks are made of, by exact type (a subclass may
    compute something else). A :class:`~skae.engine.networks.GaussianEncoder`
    yields its mean alone: the first ``n_components`` columns of its body's
    output.
    """
    kind = type(module)
    if module._forward_hooks or module._forward_pre_hooks or "forward" in vars(module):
        raise _Unconvertible(f"{where} (a {kind.__name__} with hooks or its own forward)")
    if kind is nn.Sequential:
        for name, child in module.named_children():
            x, rank = _network(graph, child, x, rank, f"{where}.{name}", n_components)
        return x, rank
    if kind is GaussianEncoder:
        both, rank = _network(graph, module.body, x, rank, f"{where}.body", n_components)
        if rank == 2:
            bounds = [graph.integers([value], "slice") for value in (0, n_components, 1)]
            return graph.node("Slice", [both, *bounds]), 2
    elif kind is Standardize:
        centred = graph.node("Sub", [x, graph.weights(module.mean, "mean")])
        return graph.node("Div", [centred, graph.weights(module.scale, "scale")]), rank
    elif kind is Unstandardize:
        scaled = graph.node("Mul", [x, graph.weights(module.scale, "scale")])
        return graph.node("Add", [scaled, graph.weights(module.mean, "mean")]), rank
    elif kind is nn.Linear and rank == 2:
        inputs = [x, graph.weights(module.weight, "weight")]
        if module.bias is not None:
            inputs.append(graph.weights(module.bias, "bias"))
        return graph.node("Gemm", inputs, transB=1), 2
    elif kind in (nn.Conv2d, nn.ConvTranspose2d) and rank == 4:
        return _conv(graph, module, x, where), 4
    elif kind is nn.Unflatten and rank == 2 and module.dim in (1, -1):
        shape = graph.integers([0, *module.unflattened_size], "shape")
        return graph.node("Reshape", [x, shape]), 1 + len(module.unflattened_size)
    elif kind is nn.Flatten and module.start_dim == 1 and module.end_dim == -1:
        return graph.node("Flatten", [x], axis=1), 2
    else:
        y = _activation(graph, module, x)
        if y is not None:
            return y, rank
    if kind in (GaussianEncoder, nn.Linear, nn.Conv2d, nn.ConvTranspose2d, nn.Unflatten, nn.Flatten):
        raise _Unconvertible(f"{where} (a {kind.__name__} with these settings, on {rank}-d input)")
    raise _Unconvertible(f"{where} (a {kind.__name__})")


def _add_network(graph, estimator, name, x):
    """``estimator.<name>`` on ``x`` in ``graph``, or a ValueError naming what cannot be converted."""
    check_is_fitted(estimator)
    if torch.nn.modules.module._global_forward_hooks or torch.nn.modules.module._global_forward_pre_hooks:
        raise ValueError("skae.onnx cannot convert networks while global forward hooks are registered.")
    try:
        y, rank = _network(graph, getattr(estimator, name), x, 2, name, estimator.n_components_)
        if rank != 2:
            raise _Unconvertible(f"{name} (its output has {rank} dimensions, not 2)")
        return y
    except _Unconvertible as exc:
        raise ValueError(
            f"skae.onnx cannot convert the {name} of this {type(estimator).__name__}: {exc} has no "
            "ONNX form here. It converts the networks skae builds, and networks you supply when "
            "they are made only of nn.Sequential, nn.Linear, nn.Conv2d, nn.ConvTranspose2d, "
            "nn.Flatten, nn.Unflatten and the activations skae offers, without hooks. Export other "
            "networks with torch.onnx.export."
        ) from None


def _graph_dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in _FLOAT_DTYPES:
        raise ValueError(f"skae.onnx exports float32 or float64 graphs, got dtype {dtype}.")
    return dtype


# ------------------------------------------------------------------ skl2onnx


def _shape_calculator(operator):
    estimator = operator.raw_operator
    check_is_fitted(estimator)
    input_type = operator.inputs[0].type
    shape = list(input_type.shape or [None, None])
    if len(shape) == 2 and shape[1] not in (None, estimator.n_features_in_):
        raise ValueError(
            f"{type(estimator).__name__} was fitted on {estimator.n_features_in_} features, but "
            f"skl2onnx gives it {shape[1]} columns."
        )
    operator.outputs[0].type = type(input_type)([shape[0], estimator.n_components_])


def _convert_transform(scope, operator, container):
    estimator = operator.raw_operator
    graph = _ConverterGraph(scope, container, _graph_dtype(guess_numpy_type(operator.inputs[0].type)))
    codes = _add_network(graph, estimator, "encoder_", operator.inputs[0].full_name)
    graph.node("Identity", [codes], output=operator.outputs[0].full_name)


for _cls in (AutoencoderTransformer, VAETransformer):
    update_registered_converter(_cls, f"Skae{_cls.__name__}", _shape_calculator, _convert_transform)


# ------------------------------------------------------------------ decoder


def inverse_transform_to_onnx(estimator, *, dtype=np.float32, target_opset=None):
    """Export ``estimator.inverse_transform`` (the decoder) as an ONNX model.

    The model maps latent codes, input ``"X"`` of shape
    ``(n, n_components_)``, to data in input space, output ``"X_original"`` of
    shape ``(n, n_features_in_)``: the reconstruction for
    ``reconstruction_loss="mse"``, probabilities (the decoder's logits through
    a sigmoid) for ``"bce"``, as :meth:`~skae.AutoencoderTransformer.inverse_transform`
    returns them. Export ``transform`` with ``skl2onnx.to_onnx`` once this
    module is imported.

    Parameters
    ----------
    estimator : AutoencoderTransformer or VAETransformer
        A fitted estimator.
    dtype : {numpy.float32, numpy.float64}, default=numpy.float32
        Element type of the model's input, output and weights.
    target_opset : int or None, default=None
        ONNX opset of the model, at least 13; None uses the latest opset
        skl2onnx has tested.

    Returns
    -------
    onnx.ModelProto
        The checked model; save it with ``onnx.save(model, path)`` and run it
        with onnxruntime.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        If the estimator is not fitted.
    ValueError
        If the decoder holds a module that has no ONNX form (a user-supplied
        network made of other layers), or ``dtype`` or ``target_opset`` is not
        supported.

    See Also
    --------
    skl2onnx.to_onnx : Export ``transform``, alone or in a Pipeline.

    Examples
    --------
    >>> import numpy as np
    >>> import onnxruntime
    >>> from sklearn.datasets import load_iris
    >>> from skae import VAETransformer
    >>> from skae.onnx import inverse_transform_to_onnx
    >>> X = load_iris().data
    >>> vae = VAETransformer(max_iter=5, random_state=0).fit(X)
    >>> model = inverse_transform_to_onnx(vae)
    >>> session = onnxruntime.InferenceSession(model.SerializeToString())
    >>> Z = vae.transform(X).astype(np.float32)
    >>> X_rec = session.run(None, {"X": Z})[0]
    >>> X_rec.shape
    (150, 4)
    >>> bool(np.allclose(X_rec, vae.inverse_transform(Z), rtol=1e-5, atol=1e-5))
    True
    """
    if not isinstance(estimator, (AutoencoderTransformer, VAETransformer)):
        raise TypeError(f"inverse_transform_to_onnx exports skae estimators, got a {type(estimator).__name__}.")
    dtype = _graph_dtype(dtype)
    opset = get_latest_tested_opset_version() if target_opset is None else target_opset
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, int) or not _MIN_OPSET <= opset <= newest:
        raise ValueError(f"target_opset must be an int from {_MIN_OPSET} to {newest}, got {target_opset!r}.")
    graph = _StandaloneGraph(dtype)
    output = _add_network(graph, estimator, "decoder_", "X")
    if estimator._fitted_architecture_params()["reconstruction_loss"] == "bce":
        output = graph.node("Sigmoid", [output])
    graph.node("Identity", [output], output="X_original")
    element = helper.np_dtype_to_tensor_dtype(dtype)
    body = helper.make_graph(
        graph.nodes,
        f"{type(estimator).__name__}_inverse_transform",
        [helper.make_tensor_value_info("X", element, [None, estimator.n_components_])],
        [helper.make_tensor_value_info("X_original", element, [None, estimator.n_features_in_])],
        graph.initializers,
    )
    opset_ids = [helper.make_opsetid("", opset)]
    model = helper.make_model(body, opset_imports=opset_ids, producer_name="skae", producer_version=__version__)
    # The oldest IR version that carries this opset, so that older runtimes read the model.
    model.ir_version = helper.find_min_ir_version_for(opset_ids)
    onnx.checker.check_model(model)
    return model
