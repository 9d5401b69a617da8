"""scikit-learn's estimator checks, with no expected failures."""

import pytest
from sklearn.utils.estimator_checks import (
    check_dataframe_column_names_consistency,
    check_get_feature_names_out_error,
    check_global_output_transform_pandas,
    check_param_validation,
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    parametrize_with_checks,
)

from skae import AutoencoderTransformer, VAETransformer

CHECKED = [
    AutoencoderTransformer(hidden_layer_sizes=(8,), max_iter=5, random_state=0, device="cpu"),
    VAETransformer(hidden_layer_sizes=(8,), max_iter=5, random_state=0, device="cpu"),
    VAETransformer(
        hidden_layer_sizes=(8, 4), reconstruction_loss="mse", beta=0.5, random_state=0,
        max_iter=5, device="cpu",
    ),
    # The checks' data are 2-D with few features: with image_shape=None each row
    # is a one-row image (a 1-D signal), so one stride-2 layer fits every check
    # that has two features or more; with one feature, fit refuses the 1x1 image
    # naming n_features=1, which check_fit2d_1feature accepts.
    AutoencoderTransformer(
        architecture="conv", conv_channels=(4,), hidden_layer_sizes=(8,), max_iter=5,
        random_state=0, device="cpu",
    ),
    VAETransformer(
        architecture="conv", conv_channels=(4,), hidden_layer_sizes=(8,), max_iter=5,
        random_state=0, device="cpu",
    ),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(CHECKED)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


EXTRA_CHECKS = [
    check_set_output_transform,
    check_set_output_transform_pandas,
    check_global_output_transform_pandas,
    check_transformer_get_feature_names_out,
    check_transformer_get_feature_names_out_pandas,
    check_dataframe_column_names_consistency,
    check_param_validation,
    check_get_feature_names_out_error,
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
# The set_output checks transform arrays with a model fitted on a frame and the
# other way round, on purpose: scikit-learn's feature-name warnings are expected.
@pytest.mark.filterwarnings("ignore:X has feature names, but:UserWarning")
@pytest.mark.filterwarnings("ignore:X does not have valid feature names, but:UserWarning")
@pytest.mark.parametrize(
    "estimator", CHECKED[:2] + CHECKED[3:], ids=lambda e: f"{type(e).__name__}-{e.architecture}"
)
@pytest.mark.parametrize("check", EXTRA_CHECKS, ids=lambda c: c.__name__)
def test_checks_run_outside_parametrize_with_checks(estimator, check):
    pytest.importorskip("pandas")
    check(type(estimator).__name__, estimator)
