"""softmaxreg.functional against scipy.special, sklearn.metrics.log_loss, finite differences and
the worked examples of the notes."""

import warnings

import numpy as np
import pytest
import scipy.special
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.metrics import log_loss

from softmaxreg.functional import (
    binary_cross_entropy,
    binary_cross_entropy_grad,
    cross_entropy,
    cross_entropy_grad,
    labels_from_logits,
    log_sigmoid,
    log_softmax,
    logsumexp,
    one_hot,
    sigmoid,
    sigmoid_binary_cross_entropy,
    softmax,
    softmax_cross_entropy,
)


@pytest.fixture
def strict():
    """Every warning is an error, and so is any overflow, invalid operation or division by 0."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(over="raise", invalid="raise", divide="raise"):
            yield


def random_problem(n=30, K=4, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.normal(scale=2.0, size=(n, K))
    y = rng.integers(0, K, size=n)
    y[:K] = np.arange(K)  # every class present, as log_loss wants
    return Z, y, rng


def central_differences(f, Z, h=1e-6):
    G = np.empty_like(Z)
    for idx in np.ndindex(Z.shape):
        E = np.zeros_like(Z)
        E[idx] = h
        G[idx] = (f(Z + E) - f(Z - E)) / (2 * h)
    return G


# -- the worked examples of the notes ------------------------------------------------------------
def test_softmax_worked_example_of_the_notes():
    assert_allclose(softmax([5.0, 2.0, -1.0, 3.0]), [0.842, 0.042, 0.002, 0.114], atol=5e-4)


def test_three_class_worked_example_of_the_notes():
    X = np.array([[-1.0, 1.0]])
    W = np.array([[-2.5, -1.0], [1.0, 2.0], [1.0, 0.0]])  # rows w1, w2, w3
    Z = X @ W.T
    assert_allclose(Z, [[1.5, 1.0, -1.0]])
    assert_allclose(softmax(Z), [[0.592, 0.359, 0.049]], atol=5e-4)


# -- softmax, log_softmax, logsumexp against scipy.special ----------------------------------------
@pytest.mark.parametrize("shape", [(7,), (20, 5), (3, 1)])
def test_against_scipy_on_random_data(shape):
    Z = np.random.default_rng(1).normal(scale=5.0, size=shape)
    assert_allclose(softmax(Z), scipy.special.softmax(Z, axis=-1), rtol=1e-13)
    assert_allclose(log_softmax(Z), scipy.special.log_softmax(Z, axis=-1), rtol=1e-13, atol=1e-13)
    assert_allclose(logsumexp(Z), scipy.special.logsumexp(Z, axis=-1), rtol=1e-13)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_logits_are_stable_and_keep_their_dtype(dtype, strict):
    Z = np.array([[1e4, -1e4, 0.0], [-1e4, -1e4, -1e4], [1e4, 1e4, -1e4], [-1e4, 1.0, 2.0]],
                 dtype=dtype)
    Z64 = Z.astype(np.float64)
    rtol = 1e-6 if dtype == np.float32 else 1e-13
    for ours, ref in [
        (softmax(Z), scipy.special.softmax(Z64, axis=1)),
        (log_softmax(Z), scipy.special.log_softmax(Z64, axis=1)),
        (logsumexp(Z), scipy.special.logsumexp(Z64, axis=1)),
    ]:
        assert ours.dtype == dtype
        assert np.all(np.isfinite(ours))
        assert_allclose(ours, ref, rtol=rtol, atol=rtol)
    loss, dZ = softmax_cross_entropy(Z, np.array([1, 0, 2, 0]))
    assert np.isfinite(loss) and dZ.dtype == dtype and np.all(np.isfinite(dZ))
    # CE_i = lse_i − z_{i,y_i}: 2e4, ln 3, 2e4 + ln 2, 1e4 + 2 + log(1 + e^-1)
    expected = np.mean([2e4, np.log(3), 2e4 + np.log(2), 1e4 + 2 + np.log1p(np.exp(-1))])
    assert loss == pytest.approx(expected, rel=rtol)
    # the small losses of huge logits must not be lost to cancellation against lse ≈ 1e4
    for y_row, ce in [(0, np.log(3)), (1, np.log(3))]:
        assert cross_entropy(Z[1:2], [y_row]) == pytest.approx(ce, rel=rtol)
        assert softmax_cross_entropy(Z[1:2], [y_row])[0] == pytest.approx(ce, rel=rtol)
    assert cross_entropy(Z[2:3], [0]) == pytest.approx(np.log(2), rel=rtol)
    assert softmax_cross_entropy(Z[2:3], np.array([[0.5, 0.5, 0]], dtype=dtype))[0] == (
        pytest.approx(np.log(2), rel=rtol))


def test_softmax_of_an_integer_array_is_float():
    assert_allclose(softmax(np.array([[1, 2, 3]])), scipy.special.softmax([[1.0, 2.0, 3.0]], 1))


# -- one_hot -----------------------------------------------------------------------------------
def test_one_hot_equals_rows_of_the_identity():
    y = np.array([2, 0, 1, 2, 4])
    assert_array_equal(one_hot(y), np.eye(5)[y])
    assert_array_equal(one_hot(y, n_classes=7), np.eye(7)[y])
    assert one_hot(y, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("bad", [np.array([0, -1]), np.array([0.0, 1.0]), np.zeros((2, 2), int)])
def test_one_hot_rejects_what_is_not_labels(bad):
    with pytest.raises(ValueError):
        one_hot(bad)


def test_one_hot_rejects_a_label_outside_n_classes():
    with pytest.raises(ValueError, match="3"):
        one_hot(np.array([0, 3]), n_classes=3)


# -- cross-entropy against sklearn.metrics.log_loss ----------------------------------------------
def test_cross_entropy_integer_labels_matches_log_loss():
    Z, y, _ = random_problem()
    ref = log_loss(y, scipy.special.softmax(Z, axis=1), labels=range(4))
    assert cross_entropy(Z, y) == pytest.approx(ref, rel=1e-12)
    assert softmax_cross_entropy(Z, y)[0] == pytest.approx(ref, rel=1e-12)


def test_cross_entropy_one_hot_matches_log_loss():
    Z, y, _ = random_problem()
    ref = log_loss(y, scipy.special.softmax(Z, axis=1), labels=range(4))
    assert cross_entropy(Z, np.eye(4)[y]) == pytest.approx(ref, rel=1e-12)


def test_cross_entropy_sample_weight_matches_log_loss():
    Z, y, rng = random_problem()
    s = rng.uniform(0.1, 3.0, size=len(y))
    ref = log_loss(y, scipy.special.softmax(Z, axis=1), sample_weight=s, labels=range(4))
    assert cross_entropy(Z, y, s) == pytest.approx(ref, rel=1e-12)
    assert cross_entropy(Z, np.eye(4)[y], s) == pytest.approx(ref, rel=1e-12)
    assert softmax_cross_entropy(Z, y, s)[0] == pytest.approx(ref, rel=1e-12)


def test_cross_entropy_probability_targets_match_log_loss():
    # CE is linear in the target row: a probability row Y_i is the K labels k with weights Y_ik.
    Z, _, rng = random_problem(n=12, K=3)
    Y = rng.dirichlet(np.ones(3), size=12)
    s = rng.uniform(0.5, 2.0, size=12)
    P = scipy.special.softmax(Z, axis=1)
    rows, labels = np.repeat(np.arange(12), 3), np.tile(np.arange(3), 12)
    ref = log_loss(labels, P[rows], sample_weight=(s[:, None] * Y).ravel(), labels=range(3))
    assert cross_entropy(Z, Y, s) == pytest.approx(ref, rel=1e-12)
    assert softmax_cross_entropy(Z, Y, s)[0] == pytest.approx(ref, rel=1e-12)


@pytest.mark.parametrize("bad", [np.zeros(30), -np.ones(30), np.ones(29)])
def test_cross_entropy_rejects_bad_sample_weight(bad):
    Z, y, _ = random_problem()
    with pytest.raises(ValueError, match="sample_weight"):
        cross_entropy(Z, y, bad)


# -- the gradient at the logits ------------------------------------------------------------------
@pytest.mark.parametrize("target", ["labels", "one_hot", "probabilities"])
@pytest.mark.parametrize("weighted", [False, True])
def test_cross_entropy_grad_matches_central_differences(target, weighted):
    Z, y, rng = random_problem(n=8, K=3, seed=2)
    Y = {"labels": y, "one_hot": np.eye(3)[y],
         "probabilities": rng.dirichlet(np.ones(3), size=8)}[target]
    s = rng.uniform(0.2, 2.0, size=8) if weighted else None
    numeric = central_differences(lambda V: cross_entropy(V, Y, s), Z)
    assert_allclose(cross_entropy_grad(Z, Y, s), numeric, rtol=1e-7, atol=1e-9)
    loss, dZ = softmax_cross_entropy(Z, Y, s)
    assert loss == pytest.approx(cross_entropy(Z, Y, s), rel=1e-14)
    assert_allclose(dZ, numeric, rtol=1e-7, atol=1e-9)


def test_cross_entropy_grad_is_softmax_minus_one_hot_over_n():
    Z, y, _ = random_problem()
    expected = (scipy.special.softmax(Z, axis=1) - np.eye(4)[y]) / len(y)
    assert_allclose(cross_entropy_grad(Z, y), expected, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_integer_label_path_equals_one_hot_path(dtype):
    Z, y, rng = random_problem(n=50, K=6, seed=3)
    Z = Z.astype(dtype)
    s = rng.uniform(0.5, 2.0, size=50)
    for w in (None, s):
        loss_int, grad_int = softmax_cross_entropy(Z, y, w)
        loss_hot, grad_hot = softmax_cross_entropy(Z, one_hot(y, 6, dtype=dtype), w)
        assert grad_int.dtype == dtype
        tol = 1e-6 if dtype == np.float32 else 1e-14
        assert loss_int == pytest.approx(loss_hot, rel=tol)
        assert_allclose(grad_int, grad_hot, rtol=tol, atol=tol * 1e-2)


# -- sigmoid and binary cross-entropy --------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_matches_expit_including_extremes(dtype, strict):
    z = np.concatenate([np.linspace(-40, 40, 81), [-1e4, 1e4, 0.0, -745.0, 745.0]]).astype(dtype)
    ours = sigmoid(z)
    assert ours.dtype == dtype
    rtol = 1e-6 if dtype == np.float32 else 1e-15
    assert_allclose(ours, scipy.special.expit(z), rtol=rtol, atol=1e-300)
    assert_allclose(log_sigmoid(z), scipy.special.log_expit(z), rtol=rtol, atol=1e-300)


def test_binary_cross_entropy_matches_log_loss():
    rng = np.random.default_rng(4)
    z = rng.normal(scale=3.0, size=40)
    y = rng.integers(0, 2, size=40)
    s = rng.uniform(0.1, 2.0, size=40)
    p = scipy.special.expit(z)
    assert binary_cross_entropy(z, y) == pytest.approx(log_loss(y, p), rel=1e-12)
    assert binary_cross_entropy(z, y, s) == pytest.approx(log_loss(y, p, sample_weight=s),
                                                          rel=1e-12)
    # an (n, 1) column of logits is the same problem
    assert binary_cross_entropy(z[:, None], y) == pytest.approx(log_loss(y, p), rel=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_binary_cross_entropy_grad_matches_central_differences(weighted):
    rng = np.random.default_rng(5)
    z = rng.normal(size=9)
    y = rng.integers(0, 2, size=9)
    s = rng.uniform(0.1, 2.0, size=9) if weighted else None
    numeric = central_differences(lambda v: binary_cross_entropy(v, y, s), z)
    assert_allclose(binary_cross_entropy_grad(z, y, s), numeric, rtol=1e-7, atol=1e-10)
    loss, dz = sigmoid_binary_cross_entropy(z[:, None], y, s)
    assert dz.shape == (9, 1)
    assert_allclose(dz[:, 0], numeric, rtol=1e-7, atol=1e-10)


def test_binary_cross_entropy_of_extreme_logits_is_finite(strict):
    z = np.array([1e4, -1e4, 1e4, -1e4])
    y = np.array([1, 0, 0, 1])
    assert binary_cross_entropy(z, y) == pytest.approx(1e4 / 2, rel=1e-12)


def test_two_class_softmax_reduces_to_the_sigmoid():
    """The K = 2 reduction of the notes: softmax([0, z]) = [1 − σ(z), σ(z)], and so the CE."""
    rng = np.random.default_rng(6)
    z = rng.normal(scale=4.0, size=25)
    y = rng.integers(0, 2, size=25)
    s = rng.uniform(0.5, 1.5, size=25)
    Z = np.column_stack([np.zeros_like(z), z])
    p = scipy.special.expit(z)
    assert_allclose(softmax(Z), np.column_stack([1 - p, p]), rtol=1e-13, atol=1e-16)
    assert cross_entropy(Z, y) == pytest.approx(binary_cross_entropy(z, y), rel=1e-13)
    assert cross_entropy(Z, y, s) == pytest.approx(binary_cross_entropy(z, y, s), rel=1e-13)
    # the gradient in z is the gradient in z_1, the second column
    assert_allclose(cross_entropy_grad(Z, y)[:, 1], binary_cross_entropy_grad(z, y), rtol=1e-12)


# -- invariants (hypothesis) ---------------------------------------------------------------------
finite = st.floats(-50, 50, allow_nan=False, allow_infinity=False)
logit_matrices = st.integers(1, 6).flatmap(
    lambda K: arrays(np.float64, st.tuples(st.integers(1, 5), st.just(K)), elements=finite)
)


@settings(max_examples=60, deadline=None)
@given(Z=logit_matrices)
def test_probabilities_are_in_range_and_sum_to_one(Z):
    P = softmax(Z)
    assert np.all((P >= 0) & (P <= 1))
    assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    assert_allclose(np.exp(log_softmax(Z)), P, rtol=1e-12, atol=1e-300)


@settings(max_examples=60, deadline=None)
@given(Z=logit_matrices, c=st.floats(-1e3, 1e3))
def test_softmax_is_shift_invariant(Z, c):
    assert_allclose(softmax(Z + c), softmax(Z), rtol=1e-9, atol=1e-12)
    assert_allclose(logsumexp(Z + c), logsumexp(Z) + c, rtol=1e-12, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(Z=logit_matrices, data=st.data())
def test_cross_entropy_is_minus_log_of_the_true_class_probability(Z, data):
    n, K = Z.shape
    y = np.array(data.draw(st.lists(st.integers(0, K - 1), min_size=n, max_size=n)))
    per_row = [cross_entropy(Z[i : i + 1], y[i : i + 1]) for i in range(n)]
    assert min(per_row) >= 0
    ref = -np.log(scipy.special.softmax(Z, axis=1)[np.arange(n), y])
    assert_allclose(per_row, ref, rtol=1e-9, atol=1e-12)
    assert cross_entropy(Z, y) == pytest.approx(ref.mean(), rel=1e-9, abs=1e-12)


@given(arrays(np.float64, st.tuples(st.integers(1, 20), st.integers(1, 6)),
              elements=st.floats(-1e6, 1e6)))
@settings(max_examples=100, deadline=None)
def test_labels_from_logits_are_the_most_probable_classes(Z):
    """K ≥ 2 logits: argmax_k z_ik (the first on ties, as np.argmax); one sigmoid unit: class 1
    exactly where σ(z) > ½, i.e. z > 0; both agree with the probabilities' argmax."""
    labels = labels_from_logits(Z)
    if Z.shape[1] == 1:
        assert_array_equal(labels, (Z[:, 0] > 0).astype(int))
        assert_array_equal(labels_from_logits(Z[:, 0]), labels)
        return
    assert_array_equal(labels, np.argmax(Z, axis=1))
    P = softmax(Z)
    assert np.all(P[np.arange(len(Z)), labels] == P.max(axis=1))
