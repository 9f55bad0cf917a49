"""Optimisers against textbook implementations written here, convergence on a convex quadratic,
schedules against their formulas, and checkpoint round trips."""

import math

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from softmaxreg.optim import (
    SGD,
    Adam,
    AdamW,
    constant,
    cosine,
    make_optimizer,
    make_schedule,
    step_decay,
)


def random_gradients(n_steps=6, size=11, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=size), [rng.normal(scale=rng.uniform(0.1, 3), size=size)
                                   for _ in range(n_steps)]


def run(opt, theta0, grads, lr):
    theta = theta0.copy()
    opt.init(theta)
    for g in grads:
        opt.step(theta, g, lr)
    return theta


# -- textbook references (the PyTorch formulation of momentum: buf ← μ buf + g) ------------------
def textbook_sgd(theta, grads, lr, mu=0.0, nesterov=False):
    theta, buf = theta.copy(), np.zeros_like(theta)
    for g in grads:
        buf = mu * buf + g
        theta = theta - lr * (g + mu * buf if nesterov else buf)
    return theta


def textbook_adam(theta, grads, lr, b1=0.9, b2=0.999, eps=1e-8, wd=0.0, mask=None):
    """Kingma & Ba, Algorithm 1; AdamW (Loshchilov & Hutter) adds η λ θ on the masked entries."""
    theta, m, v = theta.copy(), np.zeros_like(theta), np.zeros_like(theta)
    mask = np.ones_like(theta) if mask is None else mask
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        theta = theta - lr * (m_hat / (np.sqrt(v_hat) + eps) + wd * theta * mask)
    return theta


@pytest.mark.parametrize("mu, nesterov", [(0.0, False), (0.9, False), (0.5, True), (0.9, True)])
def test_sgd_matches_the_textbook(mu, nesterov):
    theta0, grads = random_gradients()
    ours = run(SGD(momentum=mu, nesterov=nesterov), theta0, grads, lr=0.05)
    assert_allclose(ours, textbook_sgd(theta0, grads, 0.05, mu, nesterov), rtol=1e-12, atol=1e-14)


def test_nesterov_differs_from_classical_momentum():
    theta0, grads = random_gradients()
    assert not np.allclose(run(SGD(0.9, nesterov=True), theta0, grads, 0.1),
                           run(SGD(0.9), theta0, grads, 0.1))


@pytest.mark.parametrize("b1, b2, eps", [(0.9, 0.999, 1e-8), (0.8, 0.99, 1e-3), (0.0, 0.9, 0.1)])
def test_adam_matches_the_textbook(b1, b2, eps):
    theta0, grads = random_gradients(n_steps=8)
    ours = run(Adam(b1, b2, eps), theta0, grads, lr=0.01)
    assert_allclose(ours, textbook_adam(theta0, grads, 0.01, b1, b2, eps), rtol=1e-12, atol=1e-14)


def test_adamw_matches_the_textbook_with_a_mask():
    theta0, grads = random_gradients(n_steps=8, seed=1)
    mask = np.arange(theta0.size) % 3 != 0
    ours = run(AdamW(weight_decay=0.1, decay_mask=mask), theta0, grads, lr=0.05)
    ref = textbook_adam(theta0, grads, 0.05, wd=0.1, mask=mask)
    assert_allclose(ours, ref, rtol=1e-12, atol=1e-14)
    no_mask = run(AdamW(weight_decay=0.1), theta0, grads, lr=0.05)
    assert_allclose(no_mask, textbook_adam(theta0, grads, 0.05, wd=0.1), rtol=1e-12, atol=1e-14)


def test_adamw_decay_leaves_masked_out_entries_alone():
    theta0, grads = random_gradients(n_steps=5, seed=2)
    mask = np.zeros(theta0.size, dtype=bool)
    mask[:5] = True
    plain = run(Adam(), theta0, grads, lr=0.1)
    decayed = run(AdamW(weight_decay=0.5, decay_mask=mask), theta0, grads, lr=0.1)
    assert_array_equal(decayed[~mask], plain[~mask])
    assert np.all(np.abs(decayed[mask] - plain[mask]) > 1e-6)


def test_make_optimizer():
    assert isinstance(make_optimizer("sgd", momentum=0.5), SGD)
    assert make_optimizer("adam").weight_decay == 0.0
    assert make_optimizer("adamw").weight_decay > 0  # AdamW means decoupled decay
    assert make_optimizer("adamw", weight_decay=0.3).weight_decay == 0.3
    with pytest.raises(ValueError, match="rmsprop"):
        make_optimizer("rmsprop")


# -- convergence on a convex quadratic J(θ) = ½ θᵀAθ − cᵀθ, minimised at A⁻¹c ---------------------
def quadratic(seed=3, d=6):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    A = Q @ np.diag(np.linspace(1.0, 10.0, d)) @ Q.T
    c = rng.normal(size=d)
    return A, c, np.linalg.solve(A, c)


@pytest.mark.parametrize(
    "opt, lr, steps",
    [
        (SGD(momentum=0.0), 0.1, 400),
        (SGD(momentum=0.9), 0.02, 400),
        (SGD(momentum=0.9, nesterov=True), 0.02, 400),
        (Adam(), cosine(0.1, 3000), 3000),
        (AdamW(weight_decay=1e-6), cosine(0.1, 3000), 3000),
    ],
    ids=["sgd", "momentum", "nesterov", "adam", "adamw"],
)
def test_converges_on_a_convex_quadratic(opt, lr, steps):
    A, c, theta_star = quadratic()
    schedule = lr if callable(lr) else constant(lr)
    theta = np.zeros_like(c)
    opt.init(theta)
    for t in range(steps):
        opt.step(theta, A @ theta - c, schedule(t))
    assert_allclose(theta, theta_star, atol=1e-4)


# -- schedules -----------------------------------------------------------------------------------
def test_constant_schedule():
    assert [constant(0.3)(e) for e in range(5)] == [0.3] * 5


def test_step_schedule():
    s = step_decay(0.8, step_size=3, gamma=0.5)
    expected = [0.8, 0.8, 0.8, 0.4, 0.4, 0.4, 0.2, 0.2, 0.2, 0.1]
    assert_allclose([s(e) for e in range(10)], expected, rtol=1e-15)


def test_cosine_schedule():
    E, lr, lr_min = 20, 0.5, 0.01
    s = cosine(lr, E, lr_min)
    for e in range(E + 1):
        expected = lr_min + (lr - lr_min) * (1 + math.cos(math.pi * e / E)) / 2
        assert s(e) == pytest.approx(expected, rel=1e-14)
    assert s(0) == pytest.approx(lr) and s(E) == pytest.approx(lr_min)
    assert s(E // 2) == pytest.approx((lr + lr_min) / 2)
    assert s(E + 5) == pytest.approx(lr_min)  # stays at the floor after the last epoch


def test_make_schedule():
    assert make_schedule("constant", 0.2, 30)(17) == 0.2
    step = make_schedule("step", 1.0, 30)
    assert step(9) == 1.0 and step(10) == pytest.approx(0.1) and step(20) == pytest.approx(0.01)
    cos = make_schedule("cosine", 1.0, 30)
    assert cos(0) == 1.0 and cos(15) == pytest.approx(0.5) and cos(30) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="linear"):
        make_schedule("linear", 1.0, 30)


# -- checkpoints ---------------------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: SGD(0.9, nesterov=True), lambda: Adam(),
                                  lambda: AdamW(0.1)], ids=["sgd", "adam", "adamw"])
@pytest.mark.parametrize("init_first", [True, False])
def test_state_dict_round_trip_continues_identically(make, init_first):
    theta0, grads = random_gradients(n_steps=10, seed=4)
    theta = theta0.copy()
    original = make().init(theta)
    for g in grads[:5]:
        original.step(theta, g, 0.05)
    checkpoint = (theta.copy(), original.state_dict())
    for g in grads[5:]:  # the original goes on; the checkpoint must not follow it
        original.step(theta, g, 0.05)

    resumed_theta = checkpoint[0].copy()
    resumed = make().init(resumed_theta) if init_first else make()
    resumed.load_state_dict(checkpoint[1])
    for g in grads[5:]:
        resumed.step(resumed_theta, g, 0.05)
    assert_array_equal(resumed_theta, theta)
