"""Default settings on the five data sets bundled with scikit-learn: no ConvergenceWarning.

The defaults (max_iter, tol, n_iter_no_change) were chosen from
``benchmarks/bench_defaults.py``; this test keeps them honest. One fit per data
set and estimator, with default settings (n_components=2), on the 70% split
that ``skae compare`` trains on.
"""

import re
import warnings

import pytest
from sklearn.exceptions import ConvergenceWarning

from skae import AutoencoderTransformer, VAETransformer
from skae.cli import DATASETS, load_dataset
from skae.compare import held_out_split


def test_default_fits_on_the_bundled_data_sets_converge():
    stopped_at_max_iter = []
    for name in DATASETS:
        data = load_dataset(name)
        X_train = held_out_split(data.X, data.y, random_state=0).X_train
        for cls in (AutoencoderTransformer, VAETransformer):
            model = cls(random_state=0, device="cpu")
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                model.fit(X_train)
            assert not [w for w in caught if not issubclass(w.category, ConvergenceWarning)]
            if any(issubclass(w.category, ConvergenceWarning) for w in caught):
                stopped_at_max_iter.append(f"{cls.__name__} on {name}")
            assert model.n_iter_ < model.max_iter
    assert stopped_at_max_iter == []


@pytest.mark.parametrize("cls", [AutoencoderTransformer, VAETransformer])
def test_the_documented_defaults_are_the_real_ones(cls):
    params = cls().get_params()
    for name in ("max_iter", "tol", "n_iter_no_change"):
        documented = re.search(rf"\n    {name} : \w+, default=(\S+)\n", cls.__doc__).group(1)
        assert float(documented) == params[name], name
