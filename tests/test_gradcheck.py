"""Backpropagation against central differences on random architectures, and proof that the check
catches a wrong derivative."""

import numpy as np
import pytest

import softmaxreg.network
from softmaxreg.activations import ACTIVATIONS, Activation
from softmaxreg.gradcheck import gradcheck, random_problem

ACTIVATION_NAMES = ["relu", "leaky_relu", "tanh", "sigmoid", "identity"]
ARCHITECTURES = [  # 0, 1, 2 and 3 hidden layers; K softmax outputs or one sigmoid unit
    (4, 3),
    (3, 1),
    (4, 5, 3),
    (3, 4, 1),
    (3, 4, 5, 2),
    (4, 3, 4, 3, 3),
    (3, 4, 3, 2, 1),
]


def weights(n, seed):
    return np.random.default_rng(seed).uniform(0.2, 3.0, size=n)


@pytest.mark.parametrize("sizes", ARCHITECTURES, ids=lambda s: "-".join(map(str, s)))
@pytest.mark.parametrize("activation", ACTIVATION_NAMES)
def test_backprop_matches_central_differences(sizes, activation):
    seed = len(sizes) * 10 + ACTIVATION_NAMES.index(activation)
    net, X, y = random_problem(sizes, activation=activation, n=10, seed=seed)
    assert net.output == ("sigmoid" if sizes[-1] == 1 else "softmax")
    errors = gradcheck(net, X, y, sample_weight=weights(10, seed), l2=0.05)
    assert [e.layer for e in errors] == list(range(1, len(sizes)))
    assert [e.shape for e in errors] == [(b, a) for a, b in zip(sizes[:-1], sizes[1:], strict=True)]
    for e in errors:
        assert e.max_rel_error < 1e-6, e


def test_gradcheck_leaves_the_parameters_unchanged():
    net, X, y = random_problem((3, 4, 2), seed=1)
    before = net.params.copy()
    gradcheck(net, X, y, l2=0.1)
    np.testing.assert_array_equal(net.params, before)


def test_gradcheck_refuses_float32():
    net = softmaxreg.network.Network((3, 2), dtype=np.float32)
    with pytest.raises(ValueError, match="float64"):
        gradcheck(net, np.zeros((2, 3)), np.array([0, 1]))


def test_a_wrong_activation_derivative_is_caught(monkeypatch):
    # tanh' written as 1 − A instead of 1 − A²
    wrong = Activation("tanh", np.tanh, lambda Z, A: 1 - A)
    monkeypatch.setitem(ACTIVATIONS, "tanh", wrong)
    net, X, y = random_problem((4, 5, 3), activation="tanh", seed=2)
    errors = gradcheck(net, X, y)
    assert errors[0].max_rel_error > 1e-2  # the hidden layer's gradient is wrong
    assert errors[1].max_rel_error < 1e-6  # the output layer is upstream of the bug


def test_a_wrong_output_gradient_is_caught(monkeypatch):
    # dZ[L] = w ∘ (Ŷ − Y) without the 1/n: every layer's gradient is wrong
    real = softmaxreg.network.softmax_cross_entropy

    def without_mean(Z, y, sample_weight=None):
        loss, dZ = real(Z, y, sample_weight)
        return loss, dZ * Z.shape[0]

    monkeypatch.setattr(softmaxreg.network, "softmax_cross_entropy", without_mean)
    net, X, y = random_problem((4, 5, 3), activation="relu", seed=3)
    assert all(e.max_rel_error > 0.5 for e in gradcheck(net, X, y))


def test_a_penalty_on_the_intercepts_is_caught(monkeypatch):
    net, X, y = random_problem((4, 5, 3), activation="tanh", seed=4)
    # a penalty whose value also counts the intercepts, while its gradient (dW += l2 W) does not
    monkeypatch.setattr(net, "penalty", lambda l2: 0.5 * l2 * float(net.params @ net.params))
    assert all(e.max_rel_error > 1e-2 for e in gradcheck(net, X, y, l2=0.5))
