"""Each activation σ against its textbook formula, and σ' against central differences of σ."""

import numpy as np
import pytest
import scipy.special
from numpy.testing import assert_allclose

from softmaxreg.activations import ACTIVATIONS, LEAKY_SLOPE, get_activation

NAMES = ["relu", "leaky_relu", "tanh", "sigmoid", "identity"]

TEXTBOOK = {
    "relu": lambda z: np.where(z > 0, z, 0.0),
    "leaky_relu": lambda z: np.where(z > 0, z, 0.01 * z),
    "tanh": np.tanh,
    "sigmoid": scipy.special.expit,
    "identity": lambda z: z,
}


def points_away_from_the_kink(seed=0):
    """A grid of inputs none of which lies within 1e-3 of relu's kink at 0."""
    z = np.random.default_rng(seed).uniform(-6, 6, size=(40, 5))
    return z[np.abs(z).min(axis=1) > 1e-3]


def test_the_registered_names():
    assert sorted(ACTIVATIONS) == sorted(NAMES)
    for name in NAMES:
        assert get_activation(name).name == name


@pytest.mark.parametrize("name", NAMES)
def test_forward_matches_the_textbook_formula(name):
    Z = points_away_from_the_kink()
    assert_allclose(get_activation(name).forward(Z), TEXTBOOK[name](Z), rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("name", NAMES)
def test_derivative_matches_central_differences(name):
    act, h = get_activation(name), 1e-6
    Z = points_away_from_the_kink()
    numeric = (act.forward(Z + h) - act.forward(Z - h)) / (2 * h)
    assert_allclose(act.derivative(Z, act.forward(Z)), numeric, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("name", NAMES)
def test_float32_in_float32_out(name):
    act = get_activation(name)
    Z = points_away_from_the_kink().astype(np.float32)
    A = act.forward(Z)
    assert A.dtype == np.float32
    assert act.derivative(Z, A).dtype == np.float32


def test_relu_family_derivatives_on_each_side_of_zero():
    Z = np.array([-2.0, -1e-9, 1e-9, 3.0])
    relu, leaky = get_activation("relu"), get_activation("leaky_relu")
    assert_allclose(relu.derivative(Z, relu.forward(Z)), [0, 0, 1, 1])
    assert_allclose(leaky.derivative(Z, leaky.forward(Z)), [0.01, 0.01, 1, 1])
    assert LEAKY_SLOPE == 0.01


def test_saturating_activations_at_extreme_inputs_are_finite():
    Z = np.array([-1e4, 1e4])
    for name in ("tanh", "sigmoid"):
        act = get_activation(name)
        with np.errstate(over="raise", invalid="raise"):
            A = act.forward(Z)
            assert_allclose(act.derivative(Z, A), [0.0, 0.0], atol=1e-300)


@pytest.mark.parametrize("bad", ["softplus", "ReLU", "", None])
def test_unknown_activation_is_a_clear_value_error(bad):
    with pytest.raises(ValueError) as info:
        get_activation(bad)
    message = str(info.value)
    assert repr(bad) in message
    assert all(name in message for name in NAMES)
