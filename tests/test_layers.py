"""Dense: forward and backward against the notes' equations written out with explicit matrices,
and against central differences."""

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from softmaxreg.activations import get_activation
from softmaxreg.layers import Dense


def make_layer(W, b, activation="identity"):
    W, b = np.array(W, dtype=float), np.array(b, dtype=float)
    return Dense(W, b, np.full_like(W, np.nan), np.full_like(b, np.nan), get_activation(activation))


def central_differences(f, V, h=1e-6):
    G = np.empty_like(V)
    for idx in np.ndindex(V.shape):
        E = np.zeros_like(V)
        E[idx] = h
        G[idx] = (f(V + E) - f(V - E)) / (2 * h)
    return G


def test_forward_of_the_notes_worked_example():
    layer = make_layer([[-2.5, -1.0], [1.0, 2.0], [1.0, 0.0]], [0.0, 0.0, 0.0])
    assert layer.shape == (3, 2)
    assert_allclose(layer.forward(np.array([[-1.0, 1.0]])), [[1.5, 1.0, -1.0]])


def test_forward_is_X_W_transpose_plus_b():
    A_prev = np.array([[1.0, 2.0], [3.0, -1.0], [0.0, 0.5]])  # (n=3, d_in=2)
    W = np.array([[1.0, -1.0], [2.0, 0.0], [0.5, 3.0], [-2.0, 1.0]])  # (d_out=4, d_in=2)
    b = np.array([0.1, -0.2, 0.3, 0.0])
    # row i, unit j: Σ_k A_prev[i, k] W[j, k] + b[j], by hand
    Z = np.array([[-1.0 + 0.1, 2.0 - 0.2, 6.5 + 0.3, 0.0],
                  [4.0 + 0.1, 6.0 - 0.2, -1.5 + 0.3, -7.0],
                  [-0.5 + 0.1, 0.0 - 0.2, 1.5 + 0.3, 0.5]])
    assert_allclose(make_layer(W, b).forward(A_prev), Z, rtol=1e-15)
    assert_allclose(make_layer(W, b, "tanh").forward(A_prev), np.tanh(Z), rtol=1e-15)


def test_backward_writes_dW_db_and_returns_dA_prev():
    A_prev = np.array([[1.0, 2.0], [3.0, -1.0], [0.0, 0.5]])
    W = np.array([[1.0, -1.0], [2.0, 0.0], [0.5, 3.0], [-2.0, 1.0]])
    layer = make_layer(W, np.zeros(4))
    dW_buffer, db_buffer = layer.dW, layer.db
    layer.forward(A_prev)
    dZ = np.array([[1.0, 0.0, -1.0, 2.0], [0.5, 1.0, 0.0, 0.0], [0.0, -2.0, 1.0, 1.0]])
    dA_prev = layer.backward(dZ)  # identity activation: dZ = dA
    # dW = dZᵀ A_prev, (4, 3) @ (3, 2); db = column sums of dZ; dA_prev = dZ W, (3, 4) @ (4, 2)
    assert_array_equal(layer.dW, [[1.0 + 1.5, 2.0 - 0.5], [3.0, -1.0 - 1.0],
                                  [-1.0, -2.0 + 0.5], [2.0, 4.0 + 0.5]])
    assert_array_equal(layer.db, [1.5, -1.0, 0.0, 3.0])
    assert_array_equal(dA_prev, [[1.0 - 0.5 - 4.0, -1.0 - 3.0 + 2.0], [0.5 + 2.0, -0.5],
                                 [-4.0 + 0.5 - 2.0, 3.0 + 1.0]])
    assert layer.dW is dW_buffer and layer.db is db_buffer  # written in place


def test_backward_applies_the_activation_derivative():
    rng = np.random.default_rng(0)
    A_prev, W, b = rng.normal(size=(5, 3)), rng.normal(size=(4, 3)), rng.normal(size=4)
    dA = rng.normal(size=(5, 4))
    layer = make_layer(W, b, "tanh")
    layer.forward(A_prev)
    dA_prev = layer.backward(dA)
    dZ = dA * (1 - np.tanh(A_prev @ W.T + b) ** 2)
    assert_allclose(layer.dW, dZ.T @ A_prev, rtol=1e-13)
    assert_allclose(layer.db, dZ.sum(axis=0), rtol=1e-13)
    assert_allclose(dA_prev, dZ @ W, rtol=1e-13)


@pytest.mark.parametrize("activation", ["relu", "leaky_relu", "tanh", "sigmoid", "identity"])
def test_backward_matches_central_differences(activation):
    """f(W, b, A_prev) = Σ G ∘ σ(A_prev Wᵀ + b): backward(G) gives its three gradients."""
    rng = np.random.default_rng(1)
    A_prev, W, b = rng.normal(size=(6, 3)), rng.normal(size=(2, 3)), rng.normal(size=2)
    G = rng.normal(size=(6, 2))
    act = get_activation(activation)

    def f(W, b, A_prev):
        return float(np.sum(G * act.forward(A_prev @ W.T + b)))

    layer = make_layer(W, b, activation)
    layer.forward(A_prev)
    dA_prev = layer.backward(G)
    assert_allclose(layer.dW, central_differences(lambda V: f(V, b, A_prev), W), rtol=1e-6)
    assert_allclose(layer.db, central_differences(lambda V: f(W, V, A_prev), b), rtol=1e-6)
    assert_allclose(dA_prev, central_differences(lambda V: f(W, b, V), A_prev), rtol=1e-6,
                    atol=1e-8)


def test_need_dA_prev_false_returns_none_but_still_writes_gradients():
    rng = np.random.default_rng(2)
    A_prev, W = rng.normal(size=(4, 3)), rng.normal(size=(2, 3))
    layer = make_layer(W, np.zeros(2))
    layer.forward(A_prev)
    dZ = rng.normal(size=(4, 2))
    assert layer.backward_linear(dZ, need_dA_prev=False) is None
    assert_allclose(layer.dW, dZ.T @ A_prev, rtol=1e-14)


def test_sparse_input_gives_the_dense_results():
    rng = np.random.default_rng(3)
    A_dense = rng.normal(size=(8, 5)) * (rng.random((8, 5)) < 0.4)
    W, b, dZ = rng.normal(size=(3, 5)), rng.normal(size=3), rng.normal(size=(8, 3))
    results = []
    for A_prev in (A_dense, sp.csr_matrix(A_dense)):
        layer = make_layer(W, b)
        Z = layer.forward(A_prev)
        assert isinstance(Z, np.ndarray)
        dA_prev = layer.backward_linear(dZ)
        results.append((Z, layer.dW.copy(), layer.db.copy(), dA_prev))
    for dense, sparse in zip(*results, strict=True):
        assert_allclose(sparse, dense, rtol=1e-13, atol=1e-14)
