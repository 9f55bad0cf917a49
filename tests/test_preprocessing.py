"""Tests of softmaxreg.preprocessing.Scaling against scikit-learn's StandardScaler and X / 255."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.preprocessing import StandardScaler

from softmaxreg.exceptions import DataError
from softmaxreg.preprocessing import Scaling


@pytest.fixture
def X() -> np.ndarray:
    rng = np.random.default_rng(0)
    X = rng.normal(3.0, 5.0, size=(9000, 6))  # more rows than one statistics block
    X[:, 2] = 0.1  # a constant feature: scale 1, as in StandardScaler
    X[:, 4] *= 1e-3
    return X


def test_standard_matches_standard_scaler(X):
    original = X.copy()
    scaling = Scaling("standard").fit(X)
    reference = StandardScaler().fit(X)
    np.testing.assert_allclose(scaling.mean, reference.mean_, rtol=1e-12)
    np.testing.assert_allclose(scaling.scale, reference.scale_, rtol=1e-10)
    np.testing.assert_allclose(scaling.transform(X, dtype=np.float64), reference.transform(X),
                               rtol=1e-9, atol=1e-12)
    out = scaling.transform(X)
    assert out.dtype == np.float32 and out is not X
    np.testing.assert_array_equal(X, original)


def test_auto_resolves_by_pixels(X):
    assert Scaling().fit(X).resolved == "standard"
    pixels = np.random.default_rng(1).integers(0, 256, (50, 784), dtype=np.uint8)
    scaling = Scaling().fit(pixels, pixels=True)
    assert scaling.resolved == "unit"
    out = scaling.transform(pixels)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, pixels / 255.0, rtol=1e-6)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_none_is_an_identity_copy(X):
    scaling = Scaling("none").fit(X, pixels=True)
    out = scaling.transform(X, dtype=np.float64)
    np.testing.assert_array_equal(out, X)
    assert not np.shares_memory(out, X)


def test_sparse_standard_only_scales_like_standard_scaler_without_mean():
    X = sp.random(300, 8, density=0.2, format="csr", random_state=2) * 10.0
    X = sp.csr_matrix(X.toarray() + np.where(X.toarray() != 0, 5.0, 0.0))  # nonzero means
    scaling = Scaling("standard").fit(X)
    reference = StandardScaler(with_mean=False).fit(X)
    np.testing.assert_allclose(scaling.scale, reference.scale_, rtol=1e-10)
    assert not scaling.mean.any()
    out = scaling.transform(X, dtype=np.float64)
    assert sp.issparse(out) and out.format == "csr" and out.nnz == X.nnz
    np.testing.assert_allclose(out.toarray(), reference.transform(X).toarray(), rtol=1e-10)


def test_sparse_auto_is_maxabs_like_max_abs_scaler_and_stays_sparse():
    """A rare sparse feature divided by its standard deviation reaches values of 30 or more
    (L-BFGS then stops unconverged); "auto" divides sparse features by their largest |x|."""
    from sklearn.preprocessing import MaxAbsScaler

    X = sp.random(300, 8, density=0.05, format="csr", random_state=5) * -7.0
    X = sp.csr_matrix(X.toarray() * (np.arange(8) != 3))  # always 0: keeps scale 1
    scaling = Scaling().fit(X)
    assert scaling.resolved == "maxabs" and not scaling.mean.any()
    np.testing.assert_allclose(scaling.scale, MaxAbsScaler().fit(X).scale_, rtol=1e-12)
    out = scaling.transform(X, dtype=np.float64)
    assert sp.issparse(out) and out.nnz == X.nnz
    np.testing.assert_allclose(out.toarray(), MaxAbsScaler().fit_transform(X).toarray())
    assert Scaling.from_state(scaling.get_state()).resolved == "maxabs"


def test_sparse_unit_divides_by_255():
    dense = np.random.default_rng(3).integers(0, 256, (20, 10)) * (np.arange(10) % 2)
    X = sp.csr_matrix(dense)
    out = Scaling().fit(X, pixels=True).transform(X)
    assert sp.issparse(out) and out.dtype == np.float32
    np.testing.assert_allclose(out.toarray(), dense / 255.0, rtol=1e-6)


def test_dense_fit_refuses_to_centre_sparse_input(X):
    """A centring scaling makes sparse rows dense, as the arrays they stand for, unless they
    are sparse data of more than DENSE_ENTRIES values."""
    from softmaxreg.preprocessing import DENSE_ENTRIES

    scaling = Scaling().fit(X)
    for rows in (X, X * (np.arange(len(X)) % 3 == 0)[:, None]):  # dense, and a third non-zero
        np.testing.assert_array_equal(scaling.transform(sp.csr_matrix(rows)),
                                      scaling.transform(rows))
    wide = Scaling().fit(np.random.default_rng(0).normal(size=(4, 2**14)))
    huge = sp.csr_matrix(([1.0, 2.0], ([0, 5], [3, 7])), shape=(2 * DENSE_ENTRIES // 2**14,
                                                                2**14))
    with pytest.raises(DataError, match="would make sparse X dense"):
        wide.transform(huge)


def test_state_round_trip_through_npz(tmp_path, X):
    scaling = Scaling().fit(X)
    np.savez(tmp_path / "state.npz", **scaling.get_state())
    with np.load(tmp_path / "state.npz", allow_pickle=False) as archive:
        state = dict(archive)
    assert all(isinstance(v, np.ndarray) and v.dtype.kind in "Uf" for v in state.values())
    restored = Scaling.from_state(state)
    assert restored.resolved == "standard"
    np.testing.assert_array_equal(restored.transform(X), scaling.transform(X))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"extra": np.zeros(1)}, "keys"),
        ({"method": np.array("auto")}, "unknown method 'auto'"),
        ({"method": np.array(["unit"])}, "method must be a string"),
        ({"mean": np.zeros(3)}, "mean has shape"),
        ({"scale": np.zeros(6)}, "must be positive"),
        ({"scale": np.array([[1.0] * 6])}, "1-D numeric"),
        ({"mean": np.array(["a"] * 6)}, "1-D numeric"),
        ({"mean": np.full(6, np.nan)}, "NaN"),
    ],
)
def test_from_state_validates(X, change, message):
    state = {**Scaling().fit(X).get_state(), **change}
    with pytest.raises(DataError, match=message):
        Scaling.from_state(state)
    del state["method"]
    with pytest.raises(DataError, match="keys"):
        Scaling.from_state(state)


def test_errors(X):
    with pytest.raises(ValueError, match="unknown scaling method 'minmax'"):
        Scaling("minmax")
    with pytest.raises(ValueError, match="not fitted"):
        Scaling().transform(X)
    scaling = Scaling().fit(X)
    with pytest.raises(DataError, match="X has 5 features, but the scaling was fitted with 6"):
        scaling.transform(X[:, :5])
    with pytest.raises(DataError, match="NaN"):
        Scaling().fit(np.array([[np.nan, 1.0]]))
    with pytest.raises(DataError, match="2-D"):
        Scaling().fit(np.ones(3))


def test_spread_below_float_resolution_does_not_divide_by_zero():
    X = np.array([[0.0], [1e-282]])  # max > min, but the variance underflows to 0
    out = Scaling("standard").fit(X).transform(X, dtype=np.float64)
    assert np.isfinite(out).all()


@settings(max_examples=40, deadline=None)
@given(hnp.arrays(np.float64, st.tuples(st.integers(2, 40), st.integers(1, 5)),
                  elements=st.integers(-10**6, 10**6).map(lambda v: v / 1000)))
def test_standardised_features_have_mean_0_and_std_1(X):
    out = Scaling("standard").fit(X).transform(X, dtype=np.float64)
    varying = X.max(axis=0) > X.min(axis=0)
    np.testing.assert_allclose(out.mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(out[:, varying].std(axis=0), 1.0, rtol=1e-6)
    np.testing.assert_allclose(out[:, ~varying], 0.0, atol=1e-9)


@pytest.mark.parametrize("top", [1.7e308, np.finfo(np.float64).max, 2.0**1023])
def test_standard_scaling_of_features_near_float64_max_is_finite_and_exact(top):
    """Features reaching float64's largest values (whose power-of-two unit would be 2**1024,
    inf) are standardised as exact rational arithmetic does (statistics.pstdev)."""
    import statistics
    from fractions import Fraction

    X = np.array([[top, 1.0], [0.0, 2.0], [-1.0, 3.0], [-top / 2, 1.0]])
    scaling = Scaling("standard").fit(X)
    for j in range(X.shape[1]):
        column = [float(v) for v in X[:, j]]
        mean = float(sum(map(Fraction, column)) / len(column))
        std = statistics.pstdev(column)
        assert scaling.scale[j] == pytest.approx(std, rel=1e-12)
        assert abs(scaling.mean[j] - mean) <= 1e-12 * std
    assert np.isfinite(scaling.transform(X, np.float32)).all()


def test_a_value_whose_scaled_value_overflows_the_dtype_is_named():
    """1.7e308 where the scaling was fitted on 1..3 is 2e308 scaled: beyond float32 (and
    float64); the error names the value instead of giving inf to the model."""
    scaling = Scaling("standard").fit(np.array([[1.0, 0.0], [2.0, 1.0], [3.0, 2.0]]))
    with pytest.raises(DataError, match=r"X\[1, 0\] = 1\.7e\+308 is beyond .* float32"):
        scaling.transform(np.array([[1.0, 0.0], [1.7e308, 0.0]]), np.float32)
    assert np.isfinite(scaling.transform(np.array([[3e38, 0.0]]), np.float64)).all()


def test_standard_scaling_centres_a_dense_array_of_mostly_zeros():
    """Dense rows are centred however many zeros they hold (70 % here), as StandardScaler
    does; only rows given as a sparse matrix of sparse data are scaled without centring."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    X[rng.random(X.shape) < 0.7] = 0.0
    np.testing.assert_allclose(Scaling("standard").fit(X).transform(X, np.float64),
                               StandardScaler().fit_transform(X), atol=1e-12)
    sparse = Scaling("standard").fit(sp.csr_matrix(X))
    np.testing.assert_allclose(sparse.transform(sp.csr_matrix(X), np.float64).toarray(),
                               StandardScaler(with_mean=False).fit_transform(X), atol=1e-12)


def test_a_scaled_value_beyond_float32_is_named_when_the_input_casts_cleanly():
    """1e36 fits in float32, but divided by a scale of about 1e-3 it does not."""
    scaling = Scaling("standard").fit(np.random.default_rng(0).normal(scale=1e-3, size=(50, 2)))
    with pytest.raises(DataError, match=r"X\[0, 0\] = 1e\+36 is beyond"):
        scaling.transform(np.array([[1e36, 0.0]]), np.float32)
