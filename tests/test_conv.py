"""architecture="conv": image shapes, image arrays, layers, and bad input."""

import math
import pickle

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.decomposition import PCA

from skae import AutoencoderTransformer, VAETransformer

from .helpers import ESTIMATORS, reconstruction_mse, tiny

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def tiny_conv(cls, **params):
    defaults = dict(architecture="conv", conv_channels=(4, 8), hidden_layer_sizes=(8,))
    defaults.update(params)
    return tiny(cls, **defaults)


def random_images(shape, n_samples=10, seed=0):
    return np.random.RandomState(seed).uniform(size=(n_samples, *shape))


def layers(module, kind):
    return [m for m in module.modules() if isinstance(m, kind)]


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("shape", [(8, 8), (1, 28, 28), (3, 32, 32), (13, 17), (2, 5, 3)])
def test_any_image_size_round_trips_to_its_own_shape(cls, shape):
    images = random_images(shape)
    est = tiny_conv(cls, n_components=3, max_iter=2, reconstruction_loss="bce").fit(images)
    assert est.image_shape_ == shape
    n_values = math.prod(shape)
    codes = est.transform(images)
    assert codes.shape == (len(images), 3)
    X_rec = est.inverse_transform(codes)
    assert X_rec.shape == (len(images), n_values)
    assert X_rec.reshape(-1, *est.image_shape_).shape == images.shape
    assert est.sample(4, random_state=0).shape == (4, n_values)
    assert np.isfinite(est.score_samples(images)).all()
    # Flattened rows with image_shape given are the same data to the estimator.
    flat = tiny_conv(cls, n_components=3, max_iter=2, reconstruction_loss="bce", image_shape=shape)
    flat.fit(images.reshape(len(images), -1))
    assert_array_equal(flat.transform(images.reshape(len(images), -1)), codes)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_image_input_forms_give_the_same_model(cls, digits):
    X = digits[0][:100]
    flat = tiny_conv(cls, image_shape=(8, 8)).fit(X)
    from_images = tiny_conv(cls).fit(X.reshape(-1, 8, 8))
    with_channel = tiny_conv(cls, image_shape=(1, 8, 8)).fit(X.reshape(-1, 1, 8, 8))
    expected = flat.transform(X)
    assert flat.image_shape_ == from_images.image_shape_ == (8, 8)
    assert with_channel.image_shape_ == (1, 8, 8)
    for est in (from_images, with_channel):
        assert_array_equal(est.transform(X), expected)
    # Fitted on any form, transform takes both flat rows and image arrays.
    assert_array_equal(flat.transform(X.reshape(-1, 8, 8)), expected)
    assert_array_equal(from_images.transform(X.reshape(-1, 1, 8, 8)), expected)
    assert_array_equal(from_images.score_samples(X.reshape(-1, 8, 8)), flat.score_samples(X))
    nested = X.reshape(-1, 8, 8)[:3].tolist()
    assert_array_equal(from_images.transform(nested), expected[:3])


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_conv_training_beats_pca(cls, digits):
    X, _ = digits
    est = tiny_conv(
        cls, image_shape=(8, 8), conv_channels=(8, 16), hidden_layer_sizes=(64,),
        learning_rate_init=3e-3, max_iter=150,
    ).fit(X)
    assert est.loss_curve_[-1] < est.loss_curve_[0]
    pca = PCA(2).fit(X)
    assert reconstruction_mse(est, X) < reconstruction_mse(pca, X)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_layers_follow_the_parameters(cls, digits):
    X = digits[0][:50]
    est = tiny_conv(
        cls, image_shape=(8, 8), conv_channels=(3, 5, 7), hidden_layer_sizes=(9, 6),
        activation="tanh", max_iter=1,
    ).fit(X)
    convs = layers(est.encoder_, torch.nn.Conv2d)
    assert [m.out_channels for m in convs] == [3, 5, 7]
    assert all(m.stride == (2, 2) and m.kernel_size == (3, 3) for m in convs)
    transposed = layers(est.decoder_, torch.nn.ConvTranspose2d)
    assert [m.out_channels for m in transposed] == [5, 3, 1]
    n_outputs = 2 if cls is AutoencoderTransformer else 4
    # 8x8 -> 4x4 -> 2x2 -> 1x1 with 7 channels, then the dense layers.
    assert [m.out_features for m in layers(est.encoder_, torch.nn.Linear)] == [9, 6, n_outputs]
    assert [m.out_features for m in layers(est.decoder_, torch.nn.Linear)] == [6, 9, 7]
    assert layers(est.encoder_, torch.nn.Tanh) and layers(est.decoder_, torch.nn.Tanh)
    assert not layers(est.encoder_, torch.nn.ReLU)
    single = tiny_conv(cls, image_shape=(8, 8), conv_channels=6, max_iter=1).fit(X)
    assert [m.out_channels for m in layers(single.encoder_, torch.nn.Conv2d)] == [6]


def test_rows_without_image_shape_are_one_dimensional_signals():
    X = np.random.RandomState(0).uniform(size=(30, 20))
    est = tiny_conv(VAETransformer, max_iter=2).fit(X)
    assert est.image_shape_ == (1, 20)
    convs = layers(est.encoder_, torch.nn.Conv2d)
    # Along the one-pixel height the kernels neither extend nor stride.
    assert [(m.kernel_size, m.stride) for m in convs] == [((1, 3), (1, 2))] * 2
    assert est.inverse_transform(est.transform(X)).shape == X.shape


def test_mlp_checks_and_records_a_given_image_shape(digits):
    X = digits[0][:50]
    est = tiny(AutoencoderTransformer, image_shape=(8, 8)).fit(X)
    assert est.image_shape_ == (8, 8)
    assert est.sample(2, random_state=0).reshape(-1, *est.image_shape_).shape == (2, 8, 8)
    assert not layers(est.encoder_, torch.nn.Conv2d)
    assert tiny(AutoencoderTransformer).fit(X).image_shape_ is None
    with pytest.raises(ValueError, match=r"image_shape=\(4, 4\).*16 values.*n_features=64"):
        tiny(AutoencoderTransformer, image_shape=(4, 4)).fit(X)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_image_shape_that_does_not_match_the_data(cls, digits):
    X = digits[0][:20]
    with pytest.raises(ValueError, match=r"image_shape=\(1, 28, 28\).*784 values.*n_features=64"):
        tiny_conv(cls, image_shape=(1, 28, 28)).fit(X)
    with pytest.raises(ValueError, match=r"images of shape \(8, 8\), but image_shape=\(4, 16\)"):
        tiny_conv(cls, image_shape=(4, 16)).fit(X.reshape(-1, 8, 8))
    # (H, W) and (1, H, W) describe the same images.
    assert tiny_conv(cls, image_shape=(1, 8, 8)).fit(X.reshape(-1, 8, 8)).image_shape_ == (8, 8)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_image_arrays_need_the_conv_architecture(cls, digits):
    X = digits[0][:20]
    with pytest.raises(ValueError, match=r"X has shape \(20, 8, 8\).*architecture='mlp'"):
        tiny(cls).fit(X.reshape(-1, 8, 8))
    fitted = tiny(cls).fit(X)
    with pytest.raises(ValueError, match=r"X has shape \(20, 1, 8, 8\).*architecture='mlp'"):
        fitted.transform(X.reshape(-1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"X has shape \(20, 1, 1, 8, 8\)"):
        tiny_conv(cls).fit(X.reshape(-1, 1, 1, 8, 8))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_transform_refuses_images_of_another_shape(cls, digits):
    X = digits[0][:20]
    est = tiny_conv(cls).fit(X.reshape(-1, 8, 8))
    with pytest.raises(ValueError, match=r"images of shape \(4, 16\).*fitted on images of shape \(8, 8\)"):
        est.transform(X.reshape(-1, 4, 16))
    with pytest.raises(ValueError, match="features"):
        est.transform(X[:, :32])


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_images_too_small_for_the_depth(cls):
    with pytest.raises(ValueError, match=r"\(2, 2\) \(n_features=4\).*conv_channels=\(4, 8\).*2x2 -> 1x1.*layer 2"):
        tiny_conv(cls).fit(random_images((2, 2)))
    with pytest.raises(ValueError, match=r"\(1, 3, 3\).*conv_channels=\(4, 4, 4\).*3x3 -> 2x2 -> 1x1"):
        tiny_conv(cls, conv_channels=(4, 4, 4)).fit(random_images((1, 3, 3)))
    with pytest.raises(ValueError, match=r"n_features=1.*architecture=\"mlp\""):
        tiny_conv(cls, conv_channels=(4,)).fit(random_images((1,)))
    # Three layers fit 8x8 images (8 -> 4 -> 2 -> 1); a fourth does not.
    tiny_conv(cls, conv_channels=(2, 2, 2), max_iter=1).fit(random_images((8, 8)))
    with pytest.raises(ValueError, match="layer 4"):
        tiny_conv(cls, conv_channels=(2, 2, 2, 2)).fit(random_images((8, 8)))


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("image_shape", [(8,), (0, 8), (8.0, 8), (1, 1, 8, 8), (True, 64)])
def test_malformed_image_shape(cls, image_shape, digits):
    with pytest.raises(ValueError, match=r"image_shape must be None, \(H, W\) or \(C, H, W\)"):
        tiny_conv(cls, image_shape=image_shape).fit(digits[0][:20])
    with pytest.raises(ValueError, match="'image_shape' parameter"):
        tiny_conv(cls, image_shape=64).fit(digits[0][:20])


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize("conv_channels", [(), (4, 0), (4, 2.5)])
def test_malformed_conv_channels(cls, conv_channels, digits):
    with pytest.raises(ValueError, match="conv_channels"):
        tiny_conv(cls, conv_channels=conv_channels).fit(digits[0][:20])
    # The MLP does not use conv_channels.
    tiny(cls, conv_channels=conv_channels, max_iter=1).fit(digits[0][:20])


@pytest.mark.parametrize("cls", ESTIMATORS)
@pytest.mark.parametrize(
    "change, name",
    [
        (dict(conv_channels=(4, 6)), "conv_channels"),
        (dict(image_shape=(4, 16)), "image_shape"),
        (dict(architecture="mlp"), "architecture"),
    ],
)
def test_warm_start_refuses_a_changed_network(cls, change, name, digits):
    X = digits[0][:50]
    est = tiny_conv(cls, image_shape=(8, 8), warm_start=True, max_iter=2).fit(X)
    est.fit(X)
    assert est.n_iter_ == 4
    est.set_params(**change)
    with pytest.raises(ValueError, match=f"{name} from .*warm_start=False"):
        est.fit(X)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_continued_training_checks_the_images(cls, digits):
    X = digits[0][:50]
    est = tiny_conv(cls).fit(X.reshape(-1, 8, 8))
    est.partial_fit(X.reshape(-1, 1, 8, 8))
    with pytest.raises(ValueError, match=r"images of shape \(2, 32\)"):
        est.partial_fit(X.reshape(-1, 2, 32))


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_fitted_conv_model_ignores_later_set_params(cls, digits):
    X = digits[0][:50]
    est = tiny_conv(cls).fit(X.reshape(-1, 8, 8))
    before = est.transform(X)
    est.set_params(architecture="mlp", image_shape=(4, 16))
    assert_array_equal(est.transform(X.reshape(-1, 8, 8)), before)


@pytest.mark.parametrize("cls", ESTIMATORS)
def test_conv_pickle_and_clone(cls, digits):
    X = digits[0][:50]
    est = tiny_conv(cls, image_shape=(8, 8)).fit(X)
    loaded = pickle.loads(pickle.dumps(est))
    assert_array_equal(loaded.transform(X), est.transform(X))
    assert loaded.image_shape_ == (8, 8)
    refit = clone(est).fit(X)
    assert_array_equal(refit.transform(X), est.transform(X))
