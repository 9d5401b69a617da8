"""encoder= / decoder=: the user's own torch modules."""

import pickle
import threading

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from torch import nn

from skae import AutoencoderTransformer, VAETransformer

from .helpers import tiny

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

N_FEATURES = 64


def user_modules(n_code_columns, n_components=2, seed=0):
    torch.manual_seed(seed)  # the test's own modules; skae itself never seeds globally
    encoder = nn.Sequential(nn.Linear(N_FEATURES, 16), nn.ReLU(), nn.Linear(16, n_code_columns))
    decoder = nn.Sequential(nn.Linear(n_components, 16), nn.ReLU(), nn.Linear(16, N_FEATURES))
    return encoder, decoder


def modules_for(cls, n_components=2):
    columns = n_components if cls is AutoencoderTransformer else 2 * n_components
    return user_modules(columns, n_components)


def state(module):
    return {key: value.clone() for key, value in module.state_dict().items()}


def assert_same_state(a, b):
    assert a.keys() == b.keys()
    assert all(torch.equal(a[key], b[key]) for key in a)


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer])
def test_user_networks_are_trained_as_copies(cls, digits):
    X = digits[0]
    encoder, decoder = modules_for(cls)
    before = state(encoder), state(decoder)
    est = tiny(cls, encoder=encoder, decoder=decoder, max_iter=20).fit(X)
    assert est.encoder is encoder and est.decoder is decoder
    assert_same_state(state(encoder), before[0])
    assert_same_state(state(decoder), before[1])
    assert est.loss_curve_[-1] < est.loss_curve_[0]
    assert est.transform(X).shape == (len(X), 2)
    assert est.inverse_transform(est.transform(X)).shape == X.shape
    assert est.sample(3, random_state=0).shape == (3, N_FEATURES)
    trained = [m for m in est.decoder_.modules() if isinstance(m, nn.Linear)]
    assert trained[0] is not decoder[0]
    assert not torch.equal(trained[0].weight.cpu(), decoder[0].weight)
    # Each fit starts again from the user's weights.
    again = tiny(cls, encoder=encoder, decoder=decoder, max_iter=20).fit(X)
    assert_array_equal(again.transform(X), est.transform(X))


def test_user_encoder_sees_the_rows_as_given(X_small):
    # An identity encoder: the codes are the rows themselves, unstandardised.
    est = tiny(
        AutoencoderTransformer, n_components=5, encoder=nn.Identity(), decoder=nn.Linear(5, 5)
    ).fit(X_small)
    assert_array_equal(est.transform(X_small), X_small)


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer])
def test_one_user_network_with_one_built(cls, digits):
    X = digits[0][:100]
    encoder, decoder = modules_for(cls)
    with_encoder = tiny(cls, encoder=encoder, max_iter=2).fit(X)
    built = [m.out_features for m in with_encoder.decoder_.modules() if isinstance(m, nn.Linear)]
    assert built == [16, N_FEATURES]  # tiny()'s hidden_layer_sizes=(16,), mirrored
    assert with_encoder.inverse_transform(with_encoder.transform(X)).shape == X.shape
    conv_decoder = tiny(
        cls, encoder=encoder, architecture="conv", image_shape=(8, 8), conv_channels=(4,),
        max_iter=2,
    ).fit(X)
    assert any(isinstance(m, nn.ConvTranspose2d) for m in conv_decoder.decoder_.modules())
    assert not any(isinstance(m, nn.Conv2d) for m in conv_decoder.encoder_.modules())
    with_decoder = tiny(cls, decoder=decoder, max_iter=2).fit(X)
    assert with_decoder.transform(X).shape == (len(X), 2)


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer])
def test_clone_grid_search_and_pickle(cls, digits):
    X = digits[0][:120]
    encoder, decoder = modules_for(cls)
    est = tiny(cls, encoder=encoder, decoder=decoder, max_iter=3)
    cloned = clone(est)
    assert cloned.encoder is not encoder and repr(cloned.encoder) == repr(encoder)
    assert_same_state(state(cloned.encoder), state(encoder))

    other_encoder, _ = user_modules(encoder[-1].out_features, seed=1)
    grid = GridSearchCV(est, {"encoder": [encoder, other_encoder], "max_iter": [2, 3]}, cv=2)
    grid.fit(X)
    assert grid.best_estimator_.transform(X).shape == (len(X), 2)
    assert_same_state(state(encoder), state(clone(est).encoder))

    fitted = est.fit(X)
    loaded = pickle.loads(pickle.dumps(fitted))
    assert_array_equal(loaded.transform(X), fitted.transform(X))
    assert_array_equal(loaded.sample(2, random_state=0), fitted.sample(2, random_state=0))
    loaded.partial_fit(X)
    assert loaded.n_iter_ == fitted.n_iter_ + 1


def test_float64_modules_are_trained_in_float32(digits):
    X = digits[0][:50]
    encoder, decoder = modules_for(AutoencoderTransformer)
    encoder, decoder = encoder.double(), decoder.double()
    est = tiny(AutoencoderTransformer, encoder=encoder, decoder=decoder, max_iter=2).fit(X)
    assert all(p.dtype == torch.float32 for p in est.encoder_.parameters())
    assert all(p.dtype == torch.float64 for p in encoder.parameters())
    assert est.transform(X.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer])
def test_wrong_module_shapes_are_named(cls, digits):
    X = digits[0][:20]
    encoder, decoder = modules_for(cls, n_components=3)
    expected = "3" if cls is AutoencoderTransformer else "6"
    with pytest.raises(
        ValueError, match=rf"encoder maps a batch of shape \(2, 64\) to \(2, {expected}\).*\(2, "
    ):
        tiny(cls, n_components=2, encoder=encoder).fit(X)
    with pytest.raises(ValueError, match=r"decoder failed on a float32 batch of shape \(2, 2\)"):
        tiny(cls, n_components=2, decoder=decoder).fit(X)
    wide = nn.Linear(2, 32)
    with pytest.raises(ValueError, match=r"decoder maps .* to \(2, 32\).*n_features=64"):
        tiny(cls, decoder=wide).fit(X)
    with pytest.raises(ValueError, match=r"encoder failed on a float32 batch of shape \(2, 64\)"):
        tiny(cls, encoder=nn.Linear(10, 4)).fit(X)


def test_module_that_cannot_be_copied(digits):
    class Locked(nn.Linear):
        def __init__(self):
            super().__init__(N_FEATURES, 2)
            self.lock = threading.Lock()

    with pytest.raises(TypeError, match="encoder=Locked.*cannot be deep-copied"):
        tiny(AutoencoderTransformer, encoder=Locked()).fit(digits[0][:20])


@pytest.mark.parametrize("bad", [nn.Linear, "linear", 3])
def test_encoder_must_be_a_module_instance(bad, digits):
    with pytest.raises(ValueError, match="'encoder' parameter"):
        tiny(AutoencoderTransformer, encoder=bad).fit(digits[0][:20])


def test_warm_start_with_user_networks(digits):
    X = digits[0][:60]
    encoder, decoder = modules_for(AutoencoderTransformer)
    est = tiny(AutoencoderTransformer, encoder=encoder, decoder=decoder, warm_start=True,
               max_iter=2).fit(X)
    # Same layers, other weights: training continues from the fitted weights.
    same_layers, _ = user_modules(2, seed=5)
    est.set_params(encoder=same_layers).fit(X)
    assert est.n_iter_ == 4
    est.set_params(encoder=nn.Sequential(nn.Linear(N_FEATURES, 2)))
    with pytest.raises(ValueError, match=r"encoder \(a module with other layers\)"):
        est.fit(X)
