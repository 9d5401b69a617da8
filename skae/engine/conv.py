"""Convolutional encoders and decoders that read and write flat rows.

Both networks take and return ``(n, C*H*W)`` batches, like the MLPs, so the
standardisation layers, the losses and the training loop need no change: the
encoder unflattens each row to a ``(C, H, W)`` image, the decoder flattens its
output image again.

Every encoder layer is a 3x3 convolution with stride 2 and padding 1, which
maps a side of ``s`` pixels to ``ceil(s / 2)``, so any image size works.
Along a side that is already 1 pixel long the layer uses a 1-pixel kernel and
stride 1 instead: a one-row image is then a 1-D signal, convolved along its
length only. The decoder mirrors the encoder with transposed convolutions whose
``output_padding`` restores odd and even sides exactly.
"""

from torch import nn

from .networks import ACTIVATIONS, build_mlp

__all__ = ["build_conv_decoder", "build_conv_encoder", "conv_map_sizes"]


def _halve(side):
    return (side + 1) // 2


def conv_map_sizes(spatial_shape, n_layers):
    """Spatial sizes of the feature maps: the input's, then after each layer.

    Parameters
    ----------
    spatial_shape : tuple of int
        ``(H, W)`` of the input images.
    n_layers : int
        Number of convolution layers.

    Returns
    -------
    list of tuple of int
        ``n_layers + 1`` sizes, from the input to the last layer's output.
    """
    sizes = [tuple(spatial_shape)]
    for _ in range(n_layers):
        sizes.append(tuple(_halve(side) for side in sizes[-1]))
    return sizes


def _geometry(side):
    """Kernel, stride and padding along a side of ``side`` pixels."""
    return (3, 2, 1) if side > 1 else (1, 1, 0)


def _layer_arguments(in_size):
    kernel, stride, padding = zip(*(_geometry(side) for side in in_size))
    return dict(kernel_size=kernel, stride=stride, padding=padding)


def _check_depth(sizes):
    for layer, in_size in enumerate(sizes[:-1], start=1):
        if all(side == 1 for side in in_size):
            raise ValueError(
                f"convolution layer {layer} would get a 1x1 feature map "
                f"(map sizes {sizes}); use fewer layers or larger images"
            )


def build_conv_encoder(image_shape, channels, hidden_layer_sizes, n_outputs, activation):
    """Strided convolutions, then dense layers to ``n_outputs`` values per row.

    Parameters
    ----------
    image_shape : tuple of int
        ``(C, H, W)`` of one image; input rows have ``C*H*W`` values in that
        (row-major) order.
    channels : sequence of int
        Output channels of each convolution layer.
    hidden_layer_sizes : sequence of int
        Widths of the dense layers between the flattened feature maps and the
        output.
    n_outputs : int
        Values per row of the output (the code, or the Gaussian's parameters).
    activation : str
        Key of :data:`~skae.engine.networks.ACTIVATIONS`.

    Returns
    -------
    torch.nn.Sequential
        Maps ``(n, C*H*W)`` to ``(n, n_outputs)``; its last layer has no
        activation.
    """
    n_channels, *spatial = image_shape
    sizes = conv_map_sizes(spatial, len(channels))
    _check_depth(sizes)
    layers = [nn.Unflatten(1, tuple(image_shape))]
    for n_in, n_out, in_size in zip([n_channels, *channels[:-1]], channels, sizes):
        layers += [nn.Conv2d(n_in, n_out, **_layer_arguments(in_size)), ACTIVATIONS[activation]()]
    layers.append(nn.Flatten())
    flat = channels[-1] * sizes[-1][0] * sizes[-1][1]
    layers += list(build_mlp([flat, *hidden_layer_sizes, n_outputs], activation))
    return nn.Sequential(*layers)


def build_conv_decoder(n_inputs, hidden_layer_sizes, channels, image_shape, activation):
    """Dense layers, then transposed convolutions back to ``image_shape``.

    The mirror of :func:`build_conv_encoder` built with the same ``channels``
    (listed from the input towards the code) and ``hidden_layer_sizes`` (also
    listed from the input towards the code; the decoder reverses both).

    Returns
    -------
    torch.nn.Sequential
        Maps ``(n, n_inputs)`` to ``(n, C*H*W)``, with no final activation
        (reconstructions, or logits for a Bernoulli decoder).
    """
    n_channels, *spatial = image_shape
    sizes = conv_map_sizes(spatial, len(channels))
    _check_depth(sizes)
    smallest = sizes[-1]
    flat = channels[-1] * smallest[0] * smallest[1]
    layers = list(build_mlp([n_inputs, *reversed(hidden_layer_sizes), flat], activation))
    layers += [ACTIVATIONS[activation](), nn.Unflatten(1, (channels[-1], *smallest))]
    outputs = [*reversed(channels[:-1]), n_channels]
    steps = list(zip(reversed(sizes[:-1]), reversed(sizes[1:])))
    for i, (n_in, n_out, (out_size, in_size)) in enumerate(zip(reversed(channels), outputs, steps)):
        arguments = _layer_arguments(out_size)
        # The encoder rounded odd sides up; output_padding adds the pixel back on even ones.
        arguments["output_padding"] = tuple(
            out_side - (2 * in_side - 1) if stride == 2 else 0
            for out_side, in_side, stride in zip(out_size, in_size, arguments["stride"])
        )
        layers.append(nn.ConvTranspose2d(n_in, n_out, **arguments))
        if i < len(channels) - 1:
            layers.append(ACTIVATIONS[activation]())
    layers.append(nn.Flatten())
    return nn.Sequential(*layers)
