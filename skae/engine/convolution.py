"""Convolutions and reshapes as operations of a chain with hand-written passes.

The operations follow the contract of :mod:`skae.engine.chain`. A convolution
needs the shape of its input maps, which only the layers before it tell, so
each operation here has ``bind(shape) -> shape``: given the shape of one input
row (``(features,)`` for flat rows, ``(C, H, W)`` for images, None when
unknown) it settles how it computes and returns the shape of one output row,
or None when it has no hand-written form for that input.

A convolution is computed in one of three ways, chosen when it is bound:

* **as a dense matrix**, for small feature maps. A convolution is a linear map
  from ``C*H*W`` input values to ``C'*H'*W'`` output values; for the 8x8
  digits the matrix of the largest layer has 512 x 256 entries. One matrix
  product then replaces the convolution kernel, whose fixed cost per call
  (milliseconds on the CPU for these sizes, forward and backward) dwarfs the
  arithmetic. The matrix is gathered from the kernel on every step through a
  precomputed index (each entry is one kernel weight or zero), and the
  kernel's gradient is gathered back from the matrix's gradient, summing the
  entries that share a weight in a fixed order. Used while the matrix has at
  most :data:`DENSE_ENTRIES` entries and at most :data:`DENSE_WASTE` times the
  multiplications of the convolution itself (the rest multiply zeros).
* **by torch's unfold-and-multiply kernels** for a 2-D layer that reads or
  writes a single map (the first and last layers of an image autoencoder),
  where this torch has them (see :class:`_UnfoldingConvolution`).
* **directly** otherwise, by torch's convolution and its backward
  (``torch.ops.aten.convolution_backward``), without autograd's graph.

``benchmarks/PERFORMANCE.md`` has the measurements behind these choices.

Flat rows travel between operations as ``(n, features)``; an operation that
needs another layout takes a view of its input.
"""

import functools
import math

import torch
from torch import nn

from .threads import convolution_work

__all__ = ["DENSE_ENTRIES", "DENSE_WASTE", "convolution_operation", "reshape_operation"]

# The largest dense matrix (entries) a convolution is lowered to: 2 MiB of
# float32, four times the largest layer of the default network on the 8x8
# digits; and the most multiplications it may spend per multiplication of the
# convolution (the first layer on the 8x8 digits spends 7).
DENSE_ENTRIES = 1 << 19
DENSE_WASTE = 8

_PLAIN = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
_TRANSPOSED = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


class _Reshape:
    """``Unflatten(1, shape)`` or ``Flatten()``: a view; gradients reshaped back."""

    reshapes = True
    threads = None  # see skae.engine.chain.set_threads

    def __init__(self, shape=None):
        self._shape = shape  # None flattens

    def bind(self, shape):
        if self._shape is None:
            return None if shape is None else (math.prod(shape),)
        if shape is not None and shape != (math.prod(self._shape),):
            return None  # torch's Unflatten(1, ...) splits the one dimension of a flat row
        return tuple(self._shape)

    def forward(self, x, owned=False):
        return self.infer(x), x.shape

    def backward(self, g, input_shape, need_input):
        return g.reshape(input_shape) if need_input else None

    def infer(self, x, owned=False):
        if self._shape is None:
            return x.reshape(x.shape[0], -1)
        return x.reshape(x.shape[0], *self._shape)


def reshape_operation(module):
    """The operation of an ``Unflatten`` or ``Flatten`` module of a batch, or None."""
    if type(module) is nn.Unflatten and module.dim == 1:
        return _Reshape(tuple(module.unflattened_size))
    if type(module) is nn.Flatten and (module.start_dim, module.end_dim) == (1, -1):
        return _Reshape()
    return None


def convolution_operation(module):
    """The operation of a convolution module, or None if it has no hand-written form."""
    if type(module) not in _PLAIN + _TRANSPOSED:
        return None
    if module.padding_mode != "zeros" or isinstance(module.padding, str):
        return None
    return _Convolution(module)


class _Convolution:
    """A convolution or transposed convolution; see the module's description."""

    fresh_output = True  # a new tensor, held by no one else
    threads = None  # see skae.engine.chain.set_threads

    def __init__(self, module):
        self.module = module
        self.weight, self.bias = module.weight, module.bias
        self.parameters = [p for p in (self.weight, self.bias) if p is not None]
        self.transposed = isinstance(module, _TRANSPOSED)
        self._run = None

    def bind(self, shape):
        work = None if shape is None else convolution_work(self.module, shape)
        if work is None:
            return None
        self.flops_per_row, out_shape = work
        self._direct = _DirectConvolution(self, shape, out_shape)
        entries = math.prod(shape) * math.prod(out_shape)
        if entries <= DENSE_ENTRIES and 2.0 * entries <= DENSE_WASTE * self.flops_per_row:
            self._run = _DenseConvolution(self, shape, out_shape)
            self.flops_per_row = 2.0 * entries
        elif _SLOW_CONV2D and _single_channel_side(self):
            self._run = _UnfoldingConvolution(self, shape, out_shape)
        else:
            self._run = self._direct
        return out_shape

    def _convolve(self, x, weight, bias):
        module = self.module
        return torch.convolution(
            x,
            weight,
            bias,
            module.stride,
            module.padding,
            module.dilation,
            self.transposed,
            module.output_padding if self.transposed else (0,) * len(module.kernel_size),
            module.groups,
        )

    def forward(self, x, owned=False):
        return self._run.forward(x)

    def backward(self, g, saved, need_input):
        return self._run.backward(g, saved, need_input)

    def infer(self, x):
        if x.dtype == torch.float64:
            # torch's float64 convolutions compute each row on its own, so the
            # result does not depend on how rows are batched, as skae promises
            # for float64 input; a matrix product over the batch does not.
            return self._direct.infer(x)
        return self._run.infer(x)


class _DirectConvolution:
    """torch's convolution kernels, with the backward pass called directly.

    (The channels-last layout, which oneDNN prefers, made single kernels up to
    2x faster but whole training steps slower on 28x28 images, for the
    conversions between layouts around them: measured and left out.)
    """

    def __init__(self, layer, in_shape, out_shape):
        self.layer, self.in_shape, self.out_shape = layer, in_shape, out_shape
        module = layer.module
        self._backward_arguments = (
            None if layer.bias is None else [layer.bias.shape[0]],
            list(module.stride),
            list(module.padding),
            list(module.dilation),
            layer.transposed,
            list(module.output_padding) if layer.transposed else [0] * len(module.kernel_size),
            module.groups,
        )

    def forward(self, x):
        images = x.reshape(x.shape[0], *self.in_shape)
        return self._apply(images, self.layer.weight, self.layer.bias), (x.shape, images)

    def _apply(self, images, weight, bias):
        return self.layer._convolve(images, weight, bias)

    def _gradients(self, g, images, need_input):
        """``(input, weight, bias)`` gradients; None for the input unless ``need_input``."""
        mask = [need_input, True, self.layer.bias is not None]
        return torch.ops.aten.convolution_backward(g, images, self.layer.weight, *self._backward_arguments, mask)

    def backward(self, g, saved, need_input):
        input_shape, images = saved
        grad_input, grad_weight, grad_bias = self._gradients(g, images, need_input)
        _store_gradients(self.layer, grad_weight, grad_bias)
        return grad_input.reshape(input_shape) if need_input else None

    def infer(self, x):
        weight, bias = _parameters_in(self.layer, x.dtype)
        return self._apply(x.reshape(x.shape[0], *self.in_shape), weight, bias)


def _parameters_in(layer, dtype):
    """The layer's weight and bias in ``dtype`` (converted copies if they differ)."""
    weight, bias = layer.weight, layer.bias
    if weight.dtype != dtype:
        weight = weight.to(dtype)
        bias = None if bias is None else bias.to(dtype)
    return weight, bias


def _store_gradients(layer, grad_weight, grad_bias):
    layer.weight.grad.copy_(grad_weight)
    if layer.bias is not None:
        layer.bias.grad.copy_(grad_bias)


def _slow_conv2d_available():
    aten = torch.ops.aten
    return all(hasattr(aten, name) for name in ("_slow_conv2d_forward", "_slow_conv2d_backward"))


# Capability check for the private kernels below; tests turn it off to check
# that a torch without them trains the same models, only more slowly.
_SLOW_CONV2D = _slow_conv2d_available()


def _single_channel_side(layer):
    """Whether the layer is a plain 2-D convolution from, or a transposed one to, one map."""
    module = layer.module
    if len(module.kernel_size) != 2 or module.groups != 1 or tuple(module.dilation) != (1, 1):
        return False
    return (module.out_channels if layer.transposed else module.in_channels) == 1


class _UnfoldingConvolution(_DirectConvolution):
    """torch's unfold-and-multiply kernels, for a convolution with one map on its thin side.

    ``torch.convolution`` hands float32 work on the CPU to oneDNN, whose fixed
    cost per call is large for a layer that reads or writes a single map (the
    first and last layers of an image autoencoder): several times the time of
    torch's own unfold-and-multiply kernel on 28x28 images at batch 128 (see
    ``benchmarks/PERFORMANCE.md``). That kernel is private (``torch.ops.aten._slow_conv2d_forward`` and
    ``_slow_conv2d_backward``), so it is used only where this torch has it.
    A transposed convolution is run through its adjoint: its input gradient is
    the plain convolution of the output gradient with the same weights, and
    its weight gradient is that convolution's weight gradient, with the roles
    of input and output gradient swapped.
    """

    def __init__(self, layer, in_shape, out_shape):
        super().__init__(layer, in_shape, out_shape)
        module = layer.module
        self._geometry = (list(module.kernel_size), list(module.stride), list(module.padding))

    def _apply(self, images, weight, bias):
        kernel, stride, padding = self._geometry
        aten = torch.ops.aten
        if self.layer.transposed:
            output_padding = list(self.layer.module.output_padding)
            return aten.slow_conv_transpose2d(images, weight, kernel, bias, stride, padding, output_padding)
        return aten._slow_conv2d_forward(images, weight, kernel, bias, stride, padding)

    def _gradients(self, g, images, need_input):
        layer = self.layer
        kernel, stride, padding = self._geometry
        aten = torch.ops.aten
        g = g.contiguous()
        if not layer.transposed:
            mask = [need_input, True, layer.bias is not None]
            return aten._slow_conv2d_backward.output_mask(g, images, layer.weight, kernel, stride, padding, mask)
        grad_weight = aten._slow_conv2d_backward.output_mask(
            images, g, layer.weight, kernel, stride, padding, [False, True, False]
        )[1]
        grad_input = aten._slow_conv2d_forward(g, layer.weight, kernel, None, stride, padding) if need_input else None
        return grad_input, grad_weight, g.sum((0, 2, 3)) if layer.bias is not None else None


class _DenseConvolution:
    """A convolution as one matrix product with a matrix gathered from its kernel."""

    def __init__(self, layer, in_shape, out_shape):
        self.layer = layer
        self._n_in, self._n_out = math.prod(in_shape), math.prod(out_shape)
        self._n_weights = layer.weight.numel()
        device = layer.weight.device
        slots, links, bias_links = _dense_tables(_geometry(layer), tuple(in_shape), tuple(out_shape))
        self._width = slots.shape[1]
        self._slots = slots.reshape(-1).to(device)
        self._links = links.to(device)
        self._per_map = self._n_out // out_shape[0]
        self._bias_links = bias_links.to(device)
        self._padded_gradient = None

    def _matrix(self, weight):
        """The ``(n_in, n_out)`` matrix of ``weight`` (``y = x @ matrix``)."""
        padded = torch.cat([weight.reshape(-1), weight.new_zeros(1)])
        return padded.index_select(0, self._links).view(self._n_in, self._n_out)

    def forward(self, x):
        layer = self.layer
        rows = x.reshape(x.shape[0], self._n_in)
        matrix = self._matrix(layer.weight)
        if layer.bias is None:
            out = torch.mm(rows, matrix)
        else:
            out = torch.addmm(layer.bias.index_select(0, self._bias_links), rows, matrix)
        return out, (x.shape, rows, matrix)

    def backward(self, g, saved, need_input):
        input_shape, rows, matrix = saved
        layer = self.layer
        gradient = self._padded_gradient
        if gradient is None or gradient.dtype != g.dtype:
            gradient = self._padded_gradient = g.new_zeros(self._n_in * self._n_out + 1)
        torch.mm(rows.t(), g, out=gradient[:-1].view(self._n_in, self._n_out))
        shared = gradient.index_select(0, self._slots).view(self._n_weights, self._width)
        torch.sum(shared, 1, out=layer.weight.grad.view(-1))
        if layer.bias is not None:
            torch.sum(g.sum(0).view(-1, self._per_map), 1, out=layer.bias.grad)
        return torch.mm(g, matrix.t()).reshape(input_shape) if need_input else None

    def infer(self, x):
        weight, bias = _parameters_in(self.layer, x.dtype)
        rows = x.reshape(x.shape[0], self._n_in)
        if bias is None:
            return torch.mm(rows, self._matrix(weight))
        return torch.addmm(bias.index_select(0, self._bias_links), rows, self._matrix(weight))


def _geometry(layer):
    """What the links of ``layer``'s kernel depend on besides the map shapes (a cache key)."""
    module = layer.module
    return (
        layer.transposed, tuple(module.weight.shape), module.groups,
        tuple(module.stride), tuple(module.padding), tuple(module.dilation),
    )


@functools.lru_cache(maxsize=64)
def _dense_tables(geometry, in_shape, out_shape):
    """``(slots, links, bias_links)`` of a dense convolution, on the CPU; built once per layout.

    ``slots`` (one row per weight, one column per tap) holds the flat position in
    the ``(n_in, n_out)`` matrix of each (weight, tap), or a pointer to one zero
    past its end where a tap falls outside the image. The taps are grouped by
    weight, so a weight's gradient is the sum of its row, always added in the
    same order. ``links`` is the matrix as indices into the weights, with the
    appended zero's index where no weight links; ``bias_links`` the output map
    of each output value. Callers only read them: one set serves every layer
    of the layout (each fit and ``partial_fit`` call binds its layers anew).
    """
    n_in, n_out = math.prod(in_shape), math.prod(out_shape)
    inputs, outputs, valid = _links(geometry, in_shape, out_shape)
    slots = torch.where(valid, inputs * n_out + outputs, n_in * n_out)
    n_weights = slots.shape[0]
    links = torch.full((n_in * n_out + 1,), n_weights, dtype=torch.long)
    owners = torch.arange(n_weights).unsqueeze(1).expand_as(slots)
    links[slots[valid]] = owners[valid]
    bias_links = torch.arange(out_shape[0]).repeat_interleave(n_out // out_shape[0])
    return slots, links[:-1], bias_links


def _links(geometry, in_shape, out_shape):
    """Which input and output value each kernel weight links, at each of its taps.

    Returns ``(inputs, outputs, valid)``, each of shape ``(n_weights, n_taps)``
    with the weights in the order of ``weight.reshape(-1)``: tap ``t`` of
    weight ``w`` multiplies input value ``inputs[w, t]`` into output value
    ``outputs[w, t]`` (flat indices of one row) where ``valid[w, t]``; the
    other taps fall on the zero padding.

    A transposed convolution is the adjoint of the plain convolution with the
    same weight tensor from its output space to its input space, so its links
    are those of that convolution with inputs and outputs swapped.
    """
    transposed, *kernel = geometry
    if transposed:
        outputs, inputs, valid = _plain_links(*kernel, out_shape, in_shape)
        return inputs, outputs, valid
    return _plain_links(*kernel, in_shape, out_shape)


def _plain_links(weight_shape, groups, stride, padding, dilation, in_shape, out_shape):
    # weight_shape: (out maps, in maps per group, *kernel)
    n_out_maps, n_in_per_group = weight_shape[0], weight_shape[1]
    out_per_group = n_out_maps // groups
    in_spatial, out_spatial = in_shape[1:], out_shape[1:]
    dims = len(in_spatial)
    # One axis per weight index (out map, in map, kernel offsets), then one per
    # output position: every combination is one tap.
    axes = [*weight_shape, *out_spatial]
    grid = torch.meshgrid(*(torch.arange(size) for size in axes), indexing="ij")
    out_map, in_local = grid[0], grid[1]
    offsets, positions = grid[2 : 2 + dims], grid[2 + dims :]
    in_map = (out_map // out_per_group) * n_in_per_group + in_local
    valid = torch.ones_like(out_map, dtype=torch.bool)
    inputs, outputs = in_map, out_map
    for d in range(dims):
        source = positions[d] * stride[d] - padding[d] + offsets[d] * dilation[d]
        valid &= (source >= 0) & (source < in_spatial[d])
        inputs = inputs * in_spatial[d] + source.clamp(0, in_spatial[d] - 1)
        outputs = outputs * out_spatial[d] + positions[d]
    n_weights = math.prod(weight_shape)
    return inputs.reshape(n_weights, -1), outputs.reshape(n_weights, -1), valid.reshape(n_weights, -1)
