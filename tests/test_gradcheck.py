"""Backpropagation against central differences on random architectures, proof that the check
catches a wrong derivative (at small and at large sizes), that it does not fail correct code whose
gradients are small, that its cost grows with the coordinates checked, not the parameters, and
that its finite differences agree with scipy's."""

import importlib
import time
import warnings

import numpy as np
import pytest
import scipy.optimize

import softmaxreg.network
from softmaxreg.activations import ACTIVATIONS, Activation
from softmaxreg.cli import main
from softmaxreg.gradcheck import central_differences, gradcheck, random_problem
from softmaxreg.layers import Dense
from softmaxreg.workflow import check_gradients

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


# -- the verdict at sizes where the per-coordinate check used to fail, and its cost --------------

def test_fifty_inputs_fifty_classes_pass(capsys):
    # the old per-coordinate check reported FAILED here: 1e-10 of rounding on gradients of 2e-6
    net, X, y = random_problem((50, 50), seed=0)
    (e,) = gradcheck(net, X, y, l2=1e-2)
    assert e.max_rel_error < 1e-8 and e.checked == 256 + 50
    assert main(["gradcheck", "--inputs", "50", "--classes", "50", "--hidden"]) == 0
    assert "OK" in capsys.readouterr().out


def test_small_correct_gradients_pass_against_the_rounding_floor():
    # a problem scaled so that every gradient is ~1e-9: far below what central differences resolve
    # relative to J (ε |J| / h ≈ 1e-10), so only the floor keeps correct code from failing
    net, X, y = random_problem((50, 50), seed=1)
    X = X * 1e-8
    _, g, _ = net.loss_grad(X, y)
    assert np.abs(g[net.penalty_mask]).max() < 1e-8  # the weights' gradients
    assert gradcheck(net, X, y)[0].max_rel_error < 1e-6


def test_a_200_by_200_layer_costs_the_coordinates_checked(monkeypatch):
    net, X, y = random_problem((200, 200), seed=5)
    calls = []
    forward = softmaxreg.network.Network.forward
    monkeypatch.setattr(softmaxreg.network.Network, "forward",
                        lambda self, *a, **k: calls.append(1) or forward(self, *a, **k))
    start = time.perf_counter()
    (e,) = gradcheck(net, X, y, l2=1e-2)
    seconds = time.perf_counter() - start
    assert e.checked == 256 + 200  # a sample of the 40 000 weights, every intercept
    # backprop once, one pass timed for the expected duration, two passes per coordinate
    assert len(calls) == 2 + 2 * e.checked
    assert e.max_rel_error < 1e-6
    assert seconds < 10, seconds  # 0.25 s when measured (checking all 40 200 took 218 s)


def test_a_check_of_minutes_says_how_long_before_it_starts(monkeypatch):
    """Every coordinate of a 1000-1000-3 network: 1 004 003 of them, two forward passes each
    (about an hour here); the warning, made an error, stops the check before its first
    difference."""
    net, X, y = random_problem((1000, 1000, 3), seed=8)
    before = net.params.copy()
    module = importlib.import_module("softmaxreg.gradcheck")

    def started(*args, **kwargs):
        raise AssertionError("the differences started before the warning")

    monkeypatch.setattr(module, "central_differences", started)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UserWarning, match=r"gradcheck: 1,004,003 coordinates to check, two "
                                              r"forward passes of the whole network each: "
                                              r"about \d+\.\d min \(fewer with max_checks\)"):
            gradcheck(net, X, y, max_checks=None)
        np.testing.assert_array_equal(net.params, before)
        monkeypatch.undo()
        assert gradcheck(*random_problem((50, 20, 3)))[0].max_rel_error < 1e-6  # no warning


def test_the_sample_is_seeded_and_max_checks_none_checks_everything(monkeypatch):
    net, X, y = random_problem((30, 20), seed=6)
    seen = []
    real = central_differences

    def spy(J, theta, index, h=1e-5):
        seen.append(index.copy())
        return real(J, theta, index, h)

    module = importlib.import_module("softmaxreg.gradcheck")  # the package's name is the function
    monkeypatch.setattr(module, "central_differences", spy)
    gradcheck(net, X, y, max_checks=50, random_state=3)
    first, seen[:] = list(seen), []
    gradcheck(net, X, y, max_checks=50, random_state=3)
    assert all(np.array_equal(a, b) for a, b in zip(first, seen, strict=True))
    assert [a.size for a in first] == [50, 20]  # W sampled, b (20 intercepts) in full
    seen.clear()
    (e,) = gradcheck(net, X, y, max_checks=None)
    assert e.checked == net.params.size and np.array_equal(np.concatenate(seen),
                                                           np.arange(net.params.size))


def test_a_network_without_output_intercepts_passes():
    _, X, y = random_problem((6, 5, 3), seed=7)
    net = softmaxreg.network.Network((6, 5, 3), "tanh", fit_intercept=False).initialize(7)
    errors = gradcheck(net, X, y, l2=0.1)
    assert errors[-1].checked == 15  # the output intercepts, held at 0, are not checked
    assert max(e.max_rel_error for e in errors) < 1e-6


def test_gradcheck_one_class_is_refused(capsys):
    """Refused when parsed (argparse's exit 2, issue 13.4), and from Python by the use case."""
    with pytest.raises(SystemExit) as exit_:
        main(["gradcheck", "--classes", "1"])
    assert exit_.value.code == 2
    assert "must be at least 2" in capsys.readouterr().err
    with pytest.raises(ValueError, match="at least 2 classes, got 1"):
        check_gradients(4, (3,), 1)


# -- injected backprop bugs at the sizes of the issue --------------------------------------------

@pytest.mark.parametrize("width", [50, 200])
def test_a_wrong_tanh_derivative_is_caught_in_wide_layers(monkeypatch, width):
    monkeypatch.setitem(ACTIVATIONS, "tanh", Activation("tanh", np.tanh, lambda Z, A: 1 - A))
    net, X, y = random_problem((width, width, width), activation="tanh", seed=8)
    errors = gradcheck(net, X, y, l2=1e-2)
    assert errors[0].max_rel_error > 1e-2 and errors[1].max_rel_error < 1e-6


@pytest.mark.parametrize("width", [50, 200])
def test_a_dropped_intercept_gradient_is_caught_in_wide_layers(monkeypatch, width):
    real = Dense.backward_linear

    def no_db(self, dZ, need_dA_prev=True):
        out = real(self, dZ, need_dA_prev)
        self.db[...] = 0
        return out

    monkeypatch.setattr(Dense, "backward_linear", no_db)
    net, X, y = random_problem((width, width), seed=9)
    assert gradcheck(net, X, y, l2=1e-2)[0].max_rel_error > 0.1


def test_a_gradient_off_by_a_tenth_of_a_percent_is_caught(monkeypatch):
    real = softmaxreg.network.softmax_cross_entropy
    monkeypatch.setattr(softmaxreg.network, "softmax_cross_entropy",
                        lambda Z, y, w=None: (lambda r: (r[0], r[1] * 1.001))(real(Z, y, w)))
    net, X, y = random_problem((50, 50), seed=10)
    assert gradcheck(net, X, y)[0].max_rel_error > 1e-4


# -- scipy as an independent reference -----------------------------------------------------------

def test_central_differences_agree_with_scipy():
    net, X, y = random_problem((5, 4, 3), seed=11)
    theta0 = net.params.copy()

    def f(theta):
        net.params[...] = theta
        return net.loss_grad(X, y, l2=0.1)[0]

    def grad(theta):
        net.params[...] = theta
        return net.loss_grad(X, y, l2=0.1)[1].copy()

    reference = scipy.optimize.approx_fprime(theta0, f, 1e-7)  # forward differences: O(h)
    net.params[...] = theta0
    ours = central_differences(lambda: f(net.params), net.params, np.arange(theta0.size))
    np.testing.assert_allclose(ours, reference, rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(net.params, theta0)
    assert scipy.optimize.check_grad(f, grad, theta0) < 1e-6 * np.linalg.norm(grad(theta0))
    assert max(e.max_rel_error for e in gradcheck(net, X, y, l2=0.1)) < 1e-6


def test_scipy_and_gradcheck_agree_on_a_bug(monkeypatch):
    monkeypatch.setitem(ACTIVATIONS, "tanh", Activation("tanh", np.tanh, lambda Z, A: 1 - A))
    net, X, y = random_problem((5, 4, 3), activation="tanh", seed=12)

    def f(theta):
        net.params[...] = theta
        return net.loss_grad(X, y)[0]

    def grad(theta):
        net.params[...] = theta
        return net.loss_grad(X, y)[1].copy()

    theta0 = net.params.copy()
    assert scipy.optimize.check_grad(f, grad, theta0) > 1e-3 * np.linalg.norm(grad(theta0))
    assert gradcheck(net, X, y)[0].max_rel_error > 1e-2
