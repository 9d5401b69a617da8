"""Image inputs for ``architecture="conv"``: shapes, image arrays and their checks.

Estimators work on flat rows ``(n, C*H*W)``. Image arrays ``(n, H, W)`` and
``(n, C, H, W)`` are flattened here, before scikit-learn's ``validate_data``
(which refuses arrays of more than two dimensions), and the image shape is
resolved from the ``image_shape`` parameter, the arrays, or the number of
features.
"""

import math
from numbers import Integral

import numpy as np

from .engine.conv import conv_map_sizes

__all__ = [
    "as_chw",
    "check_conv_depth",
    "check_image_arrays",
    "flatten_image_arrays",
    "normalized_image_shape",
    "resolve_image_shape",
]


def as_chw(shape):
    """``(H, W)`` as ``(1, H, W)``; ``(C, H, W)`` unchanged."""
    shape = tuple(int(side) for side in shape)
    return shape if len(shape) == 3 else (1, *shape)


def normalized_image_shape(image_shape):
    """The ``image_shape`` parameter as a tuple of ints in the user's layout, or None."""
    if image_shape is None:
        return None
    try:
        shape = tuple(image_shape)
    except TypeError:
        shape = None
    if (
        shape is None
        or len(shape) not in (2, 3)
        or any(
            isinstance(side, (bool, np.bool_)) or not isinstance(side, Integral) or side < 1
            for side in shape
        )
    ):
        raise ValueError(
            "image_shape must be None, (H, W) or (C, H, W) with positive integers, got "
            f"{image_shape!r}."
        )
    return tuple(int(side) for side in shape)


def flatten_image_arrays(estimator, X, architecture):
    """Flatten an array of images to rows; return ``(X, image shape or None)``.

    ``architecture`` is the estimator's (the fitted one, after fit): only
    ``"conv"`` takes images. Two-dimensional (and malformed) input is returned
    as it is, for ``validate_data`` to check.
    """
    shape = getattr(X, "shape", None)
    if shape is None and isinstance(X, (list, tuple)):
        try:
            shape = np.shape(X)
        except ValueError:  # ragged nesting
            return X, None
    if shape is None or len(shape) < 3:
        return X, None
    name = type(estimator).__name__
    if architecture != "conv":
        raise ValueError(
            f"X has shape {tuple(shape)}, but {name} with "
            f"architecture={architecture!r} expects a 2-D array of shape "
            '(n_samples, n_features). Use architecture="conv" for images, or flatten '
            "them with X.reshape(len(X), -1)."
        )
    if len(shape) > 4:
        raise ValueError(
            f"X has shape {tuple(shape)}, but {name} expects (n_samples, n_features), "
            "(n_samples, H, W) or (n_samples, C, H, W)."
        )
    return np.asarray(X).reshape(shape[0], -1), tuple(int(side) for side in shape[1:])


def resolve_image_shape(estimator, n_features, array_shape):
    """The image shape of the training data, in the user's layout, or None.

    From the image arrays when given (checked against ``image_shape``), else
    from ``image_shape`` (checked against ``n_features``), else, for
    ``architecture="conv"``, ``(1, n_features)``: each row a 1-D signal.
    """
    param = normalized_image_shape(estimator.image_shape)
    if array_shape is not None:
        if param is not None and as_chw(param) != as_chw(array_shape):
            raise ValueError(
                f"X holds images of shape {array_shape}, but image_shape="
                f"{estimator.image_shape!r}. Set image_shape={array_shape} or None."
            )
        return array_shape
    if param is not None:
        if math.prod(param) != n_features:
            raise ValueError(
                f"image_shape={estimator.image_shape!r} describes images of "
                f"{math.prod(param)} values, but X has n_features={n_features}; flattened "
                "images need one feature per pixel and channel (C*H*W)."
            )
        return param
    if estimator.architecture == "conv":
        return (1, n_features)
    return None


def check_image_arrays(estimator, array_shape):
    """Refuse image arrays whose shape is not the one the estimator was fitted on."""
    if array_shape is None:
        return
    fitted = estimator.image_shape_
    if fitted is None or as_chw(array_shape) != as_chw(fitted):
        raise ValueError(
            f"X holds images of shape {array_shape}, but {type(estimator).__name__} was "
            f"fitted on images of shape {fitted}."
        )


def check_conv_depth(image_shape, conv_channels, n_features):
    """Refuse images too small for ``len(conv_channels)`` stride-2 layers.

    Each layer halves the height and width (rounding up); a layer whose input is
    already 1x1 would see no structure at all.
    """
    _, *spatial = as_chw(image_shape)
    sizes = conv_map_sizes(spatial, len(conv_channels))
    for layer, size in enumerate(sizes[:-1], start=1):
        if size == (1, 1):
            chain = " -> ".join(f"{height}x{width}" for height, width in sizes[:layer])
            advice = (
                f"Use at most {layer - 1} conv_channels, or larger images."
                if layer > 1
                else 'Use architecture="mlp" for such data.'
            )
            raise ValueError(
                f"Images of shape {tuple(image_shape)} (n_features={n_features}) are too "
                f"small for conv_channels={tuple(conv_channels)}: each convolution layer "
                f"halves the height and width ({chain}), so layer {layer} would get a 1x1 "
                f"feature map. {advice}"
            )
