"""Network: the flat parameter buffer, initialisation, the loss and its gradient against a
textbook re-implementation, the L2 penalty, the sigmoid output and sparse input."""

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.special
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.metrics import log_loss

from softmaxreg.network import Network
from softmaxreg.objective import objective


def data(n=20, d=4, K=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    y = rng.integers(0, max(K, 2), size=n)
    y[: max(K, 2)] = np.arange(max(K, 2))
    return X, y, rng


# -- the flat buffer ---------------------------------------------------------------------------
def test_weights_and_biases_are_views_of_one_contiguous_buffer():
    net = Network((5, 4, 3, 2), activation="tanh")
    assert net.params.ndim == 1 and net.params.flags.c_contiguous
    assert net.params.size == 4 * 5 + 4 + 3 * 4 + 3 + 2 * 3 + 2
    shapes = [(4, 5), (3, 4), (2, 3)]
    for layer, W, b, shape in zip(net.layers, net.W, net.b, shapes, strict=True):
        dW, db = layer.dW, layer.db
        assert W.shape == dW.shape == shape and b.shape == db.shape == (shape[0],)
        assert np.shares_memory(W, net.params) and np.shares_memory(b, net.params)
        assert np.shares_memory(dW, net.grads) and np.shares_memory(db, net.grads)
    # layout: W[1] row-major, b[1], W[2], b[2], ...
    net.params[...] = np.arange(net.params.size)
    pieces = [np.concatenate([W.ravel(), b]) for W, b in zip(net.W, net.b, strict=True)]
    assert_array_equal(np.concatenate(pieces), np.arange(net.params.size))
    # writing into the buffer changes what the layers compute
    X = np.ones((1, 5))
    net.params[...] = 0
    assert_array_equal(net.forward(X), [[0.0, 0.0]])
    net.params[-2:] = [1.5, -2.0]  # b[3]
    assert_array_equal(net.forward(X), [[1.5, -2.0]])


def test_penalty_mask_marks_weights_not_intercepts():
    net = Network((3, 2, 2))
    net.params[...] = np.arange(net.params.size)
    weights = np.concatenate([W.ravel() for W in net.W])
    assert_array_equal(net.params[net.penalty_mask], weights)
    assert_array_equal(net.params[~net.penalty_mask], np.concatenate(net.b))


@pytest.mark.parametrize("bad, match", [
    (dict(layer_sizes=(3,)), "at least 2"),
    (dict(layer_sizes=(3, 0)), "positive"),
    (dict(layer_sizes=(3, 2), output="tanh"), "output"),
    (dict(layer_sizes=(3, 2), output="sigmoid"), "1 unit"),  # one sigmoid unit for K = 2
    (dict(layer_sizes=(3, 4, 1)), "K >= 2"),  # a softmax over one unit is always 1
])
def test_invalid_settings_raise(bad, match):
    with pytest.raises(ValueError, match=match):
        Network(**bad)


# -- initialisation ------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid", "identity"])
def test_he_and_glorot_uniform_bounds(activation):
    sizes = (300, 200, 100, 10)
    net = Network(sizes, activation=activation).initialize(0)
    he = activation in ("relu", "leaky_relu")
    for i, (W, b) in enumerate(zip(net.W, net.b, strict=True)):
        d_in, d_out = sizes[i], sizes[i + 1]
        hidden = i < len(net.W) - 1
        r = np.sqrt(6 / d_in) if he and hidden else np.sqrt(6 / (d_in + d_out))
        assert np.abs(W).max() <= r
        assert np.abs(W).max() > 0.99 * r  # the whole range is used
        assert W.std() == pytest.approx(r / np.sqrt(3), rel=0.05)  # std of U(-r, r)
        assert abs(W.mean()) < 0.05 * r
        assert_array_equal(b, 0)


def test_initialisation_is_determined_by_the_seed():
    a = Network((6, 5, 3)).initialize(7).params.copy()
    b = Network((6, 5, 3)).initialize(7).params.copy()
    c = Network((6, 5, 3)).initialize(8).params.copy()
    d = Network((6, 5, 3)).initialize(np.random.default_rng(7)).params.copy()
    assert_array_equal(a, b)
    assert_array_equal(a, d)
    assert not np.array_equal(a, c)


# -- the loss and gradient against a textbook re-implementation ---------------------------------
def textbook_loss_grad(Ws, bs, X, y, K, act, act_prime, s=None, l2=0.0):
    """Forward and backward of the notes, written out from scratch (mean over rows)."""
    n = X.shape[0]
    w = np.full(n, 1 / n) if s is None else s / s.sum()
    A, Zs, As = X, [], [X]
    for i, (W, b) in enumerate(zip(Ws, bs, strict=True)):
        Z = A @ W.T + b
        A = Z if i == len(Ws) - 1 else act(Z)
        Zs.append(Z)
        As.append(A)
    P = scipy.special.softmax(Zs[-1], axis=1)
    Y = np.eye(K)[y]
    loss = -np.sum(w * np.sum(Y * np.log(P), axis=1)) + l2 / 2 * sum(np.sum(W**2) for W in Ws)
    dZ = w[:, None] * (P - Y)
    dWs, dbs = [None] * len(Ws), [None] * len(Ws)
    for i in reversed(range(len(Ws))):
        dWs[i] = dZ.T @ As[i] + l2 * Ws[i]
        dbs[i] = dZ.sum(axis=0)
        if i:
            dZ = (dZ @ Ws[i]) * act_prime(Zs[i - 1])
    return loss, dWs, dbs


@pytest.mark.parametrize("sizes", [(4, 3), (4, 6, 3), (4, 5, 6, 3)])
@pytest.mark.parametrize("weighted", [False, True])
def test_loss_grad_matches_the_textbook(sizes, weighted):
    X, y, rng = data(K=sizes[-1])
    s = rng.uniform(0.2, 2.0, size=len(y)) if weighted else None
    net = Network(sizes, activation="tanh").initialize(1)
    net.params[~net.penalty_mask] = rng.normal(size=(~net.penalty_mask).sum())
    loss, grads, Z = net.loss_grad(X, y, s, l2=0.3)
    ref_loss, dWs, dbs = textbook_loss_grad(net.W, net.b, X, y, sizes[-1], np.tanh,
                                            lambda Z: 1 - np.tanh(Z) ** 2, s, l2=0.3)
    assert loss == pytest.approx(ref_loss, rel=1e-12)
    assert grads is net.grads
    ref = np.concatenate([np.concatenate([dW.ravel(), db])
                          for dW, db in zip(dWs, dbs, strict=True)])
    assert_allclose(grads, ref, rtol=1e-11, atol=1e-14)
    assert Z.shape == (len(y), sizes[-1])


def test_softmax_regression_gradient_is_the_notes_formula():
    """The notes: ∂J/∂W = (1/n) (Ŷ − Y)ᵀ X, ∂J/∂b = (1/n) (Ŷ − Y)ᵀ 1, J = log_loss."""
    X, y, rng = data(n=30, d=5, K=4)
    net = Network((5, 4))
    net.params[...] = rng.normal(size=net.params.size)
    loss, grads, _ = net.loss_grad(X, y)
    P = scipy.special.softmax(X @ net.W[0].T + net.b[0], axis=1)
    assert loss == pytest.approx(log_loss(y, P), rel=1e-12)
    R = (P - np.eye(4)[y]) / 30
    assert_allclose(net.layers[0].dW, R.T @ X, rtol=1e-12, atol=1e-15)
    assert_allclose(net.layers[0].db, R.sum(axis=0), rtol=1e-12, atol=1e-15)


# -- the L2 penalty ------------------------------------------------------------------------------
def test_l2_adds_l2_W_to_dW_and_nothing_to_db():
    X, y, rng = data()
    net = Network((4, 5, 3), activation="relu").initialize(0)
    net.params[~net.penalty_mask] = rng.normal(size=(~net.penalty_mask).sum())
    loss0, g0, _ = net.loss_grad(X, y)
    g0 = g0.copy()
    l2 = 0.7
    loss1, g1, _ = net.loss_grad(X, y, l2=l2)
    assert loss1 - loss0 == pytest.approx(l2 / 2 * sum(np.sum(W**2) for W in net.W), rel=1e-12)
    offset = 0
    for W, b in zip(net.W, net.b, strict=True):
        dW0 = g0[offset : offset + W.size].reshape(W.shape)
        dW1 = g1[offset : offset + W.size].reshape(W.shape)
        db0 = g0[offset + W.size : offset + W.size + b.size]
        db1 = g1[offset + W.size : offset + W.size + b.size]
        assert_allclose(dW1 - dW0, l2 * W, rtol=1e-12, atol=1e-15)
        assert_array_equal(db1, db0)  # intercepts are not penalised
        offset += W.size + b.size
    assert net.penalty(l2) == pytest.approx(loss1 - loss0, rel=1e-12)
    assert net.penalty(0.0) == 0.0


# -- the sigmoid output (K = 2) -------------------------------------------------------------------
def test_sigmoid_output_predict_proba_rows_are_one_minus_p_and_p():
    X, y, rng = data(K=1)
    net = Network((4, 1), output="sigmoid")
    net.params[...] = rng.normal(size=net.params.size)
    p = scipy.special.expit(X @ net.W[0][0] + net.b[0][0])
    assert_allclose(net.predict_proba(X), np.column_stack([1 - p, p]), rtol=1e-13)
    assert_allclose(net.decision_function(X), X @ net.W[0][0] + net.b[0][0], rtol=1e-13)


def test_sigmoid_output_equals_a_two_unit_softmax_with_a_zero_row():
    """One sigmoid unit with logit z is a softmax over [0, z] (the notes' K = 2 reduction)."""
    X, y, rng = data(K=1)
    s = rng.uniform(0.5, 2.0, size=len(y))
    sig = Network((4, 3, 1), activation="tanh", output="sigmoid").initialize(3)
    soft = Network((4, 3, 2), activation="tanh").initialize(3)
    soft.params[...] = 0
    soft.W[0][...], soft.b[0][...] = sig.W[0], sig.b[0]
    soft.W[1][1], soft.b[1][1] = sig.W[1][0], sig.b[1][0]
    loss_sig, g_sig, _ = sig.loss_grad(X, y, s, l2=0.2)
    loss_soft, g_soft, _ = soft.loss_grad(X, y, s, l2=0.2)
    assert loss_sig == pytest.approx(loss_soft, rel=1e-12)
    assert_allclose(sig.predict_proba(X), soft.predict_proba(X), rtol=1e-12)
    assert_allclose(sig.layers[0].dW, soft.layers[0].dW, rtol=1e-10, atol=1e-14)
    assert_allclose(sig.layers[1].dW[0], soft.layers[1].dW[1], rtol=1e-10, atol=1e-14)
    assert loss_sig == pytest.approx(
        log_loss(y, sig.predict_proba(X)[:, 1], sample_weight=s) + sig.penalty(0.2), rel=1e-12)


# -- sparse input, float32, no intercept ----------------------------------------------------------
def test_sparse_input_gives_the_dense_loss_and_gradients():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(25, 6)) * (rng.random((25, 6)) < 0.3)
    y = rng.integers(0, 3, size=25)
    net = Network((6, 4, 3), activation="relu").initialize(2)
    loss_d, g_d, _ = net.loss_grad(X, y, l2=0.1)
    g_d = g_d.copy()
    for fmt in (sp.csr_matrix, sp.csc_matrix):
        loss_s, g_s, _ = net.loss_grad(fmt(X), y, l2=0.1)
        assert loss_s == pytest.approx(loss_d, rel=1e-13)
        assert_allclose(g_s, g_d, rtol=1e-12, atol=1e-15)
        assert_allclose(net.predict_proba(fmt(X)), net.predict_proba(X), rtol=1e-13)


def test_float32_network_computes_in_float32():
    X, y, _ = data()
    net = Network((4, 5, 3), dtype=np.float32).initialize(0)
    loss, grads, Z = net.loss_grad(X, y)
    assert net.params.dtype == grads.dtype == Z.dtype == np.float32
    ref = Network((4, 5, 3)).initialize(0)
    ref.params[...] = net.params
    assert loss == pytest.approx(ref.loss_grad(X, y)[0], rel=1e-5)


def test_without_intercept_the_output_bias_gets_no_gradient():
    X, y, _ = data()
    net = Network((4, 3), fit_intercept=False).initialize(0)
    net.loss_grad(X, y)
    assert_array_equal(net.layers[-1].db, 0)


def test_objective_returns_a_fresh_gradient_each_call():
    """scipy keeps the gradient it was given: it must not change under a later evaluation."""
    X, y, rng = data()
    net = Network((4, 3))
    f = objective(net, X, y, l2=0.1)
    theta1, theta2 = rng.normal(size=net.params.size), rng.normal(size=net.params.size)
    J1, g1 = f(theta1)
    g1_copy = g1.copy()
    J2, g2 = f(theta2)
    assert_array_equal(g1, g1_copy)
    assert J1 != J2
    assert_array_equal(net.params, theta2)
