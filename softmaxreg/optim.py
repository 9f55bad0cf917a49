"""First-order optimisers and learning-rate schedules on a flat parameter vector.

An optimiser owns its state (velocity, moments, step count), keyed to the flat parameter buffer,
and updates the parameters in place: ``opt.init(params)`` once, then
``opt.step(params, grads, lr)``.
A schedule is a plain function ``epoch -> learning rate`` of the fractional epoch (the training
loop asks at every step, so the cosine schedule anneals smoothly).

The state lives where the parameters do (NumPy, or a device's namespace); ``state_dict`` gives
host (NumPy) copies, as checkpoints store them, and ``load_state_dict`` puts them back there.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from ._array_api import asarray, into, namespace, numpy_dtype, to_numpy

Array = NDArray[np.floating]
Schedule = Callable[[int], float]
SCHEDULES = ("constant", "step", "cosine")  # the names make_schedule knows


def _restore(current: Array | None, saved) -> Array:
    """A private copy of ``saved``, in the dtype, namespace and device of ``current`` when the
    optimiser has one."""
    if current is None or isinstance(current, np.ndarray):
        return np.array(saved, dtype=None if current is None else current.dtype)
    return namespace(current).asarray(asarray(saved, current, numpy_dtype(current.dtype)),
                                      copy=True)


def _snapshot(state: Array) -> np.ndarray:
    """A host copy: later steps do not change a checkpoint already taken."""
    return np.array(to_numpy(state))


class SGD:
    """Minibatch SGD with (optionally Nesterov) momentum μ.

    v ← μ v − η g;   θ ← θ + v                       (classical momentum)
    v ← μ v − η g;   θ ← θ + μ v − η g               (Nesterov, the form of Sutskever et al.)
    """

    def __init__(self, momentum: float = 0.9, nesterov: bool = False):
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.velocity: Array | None = None

    def init(self, params: Array) -> SGD:
        self.velocity = namespace(params).zeros_like(params)
        return self

    def step(self, params: Array, grads: Array, lr: float) -> None:
        v, mu = self.velocity, self.momentum
        if mu == 0:
            params -= lr * grads
            return
        v *= mu
        v -= lr * grads
        if self.nesterov:
            params += mu * v - lr * grads
        else:
            params += v

    def state_dict(self) -> dict[str, np.ndarray]:
        """A snapshot (copies): later steps do not change a checkpoint already taken."""
        return {"velocity": _snapshot(self.velocity)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.velocity = _restore(self.velocity, state["velocity"])


class Adam:
    """Adam (Kingma & Ba), and AdamW when ``weight_decay`` > 0 (decoupled, Loshchilov & Hutter).

    m ← β₁ m + (1 − β₁) g;  v ← β₂ v + (1 − β₂) g²;  m̂ = m / (1 − β₁ᵗ);  v̂ = v / (1 − β₂ᵗ)
    θ ← θ − η (m̂ / (√v̂ + ε) + λ θ ∘ mask)      with λ = weight_decay, mask = 1 on weights only.
    """

    def __init__(
        self,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        weight_decay: float = 0.0,
        decay_mask: NDArray[np.bool_] | None = None,
    ):
        self.beta_1, self.beta_2, self.epsilon = float(beta_1), float(beta_2), float(epsilon)
        self.weight_decay = float(weight_decay)
        self.decay_mask = decay_mask
        self.t = 0
        self.m: Array | None = None
        self.v: Array | None = None
        self._buf: Array | None = None
        self._mask: Array | None = None

    def init(self, params: Array) -> Adam:
        xp = namespace(params)
        self.m, self.v, self._buf = (xp.zeros_like(params) for _ in range(3))
        self.t = 0
        self._mask = self._decay_mask_like(params)
        return self

    def _decay_mask_like(self, params: Array) -> Array | None:
        """The decay mask (the network's, on the host) as 0/1 values where the params are."""
        if self.decay_mask is None:
            return None
        return asarray(self.decay_mask, params, numpy_dtype(params.dtype))

    def step(self, params: Array, grads: Array, lr: float) -> None:
        b1, b2, buf = self.beta_1, self.beta_2, self._buf
        self.t += 1
        self.m *= b1
        self.m += (1 - b1) * grads
        self.v *= b2
        into(buf, "multiply", grads, grads)
        buf *= 1 - b2
        self.v += buf
        # η m̂ / (√v̂ + ε) with the bias corrections folded into a step size and ε
        c1, c2 = 1 - b1**self.t, 1 - b2**self.t
        into(buf, "sqrt", self.v)
        buf += self.epsilon * math.sqrt(c2)
        into(buf, "divide", self.m, buf)
        if self.weight_decay:
            decay = lr * self.weight_decay * params
            params -= decay if self.decay_mask is None else decay * self._mask
        buf *= lr * math.sqrt(c2) / c1
        params -= buf

    def state_dict(self) -> dict[str, np.ndarray]:
        """A snapshot (copies): later steps do not change a checkpoint already taken."""
        return {"m": _snapshot(self.m), "v": _snapshot(self.v), "t": np.array(self.t)}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.m, self.v = _restore(self.m, state["m"]), _restore(self.v, state["v"])
        self._buf = namespace(self.m).empty_like(self.m)
        self._mask = self._decay_mask_like(self.m)
        self.t = int(state["t"])


def AdamW(weight_decay: float = 0.01, **kwargs) -> Adam:
    """Adam with decoupled weight decay (AdamW)."""
    return Adam(weight_decay=weight_decay, **kwargs)


# -- learning-rate schedules: epoch (0-based, fractional within an epoch) -> η ----------------
def constant(lr: float) -> Schedule:
    """η_e = η."""
    return lambda epoch: lr


def step_decay(lr: float, step_size: int = 10, gamma: float = 0.1) -> Schedule:
    """η_e = η · γ^⌊e / step_size⌋."""
    return lambda epoch: lr * gamma ** (epoch // step_size)


def cosine(lr: float, n_epochs: int, lr_min: float = 0.0) -> Schedule:
    """η_e = η_min + ½ (η − η_min)(1 + cos(π e / E)) over E epochs."""
    E = max(int(n_epochs), 1)
    return lambda epoch: lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * min(epoch, E) / E))


def make_schedule(name: str, lr: float, n_epochs: int) -> Schedule:
    """The schedule called ``name`` (constant, step, cosine) starting from ``lr``."""
    if name == "constant":
        return constant(lr)
    if name == "step":
        return step_decay(lr, step_size=max(n_epochs // 3, 1), gamma=0.1)
    if name == "cosine":
        return cosine(lr, n_epochs)
    raise ValueError(
        f"unknown learning-rate schedule {name!r}: expected 'constant', 'step' or 'cosine'")


def make_optimizer(name: str, **kwargs) -> SGD | Adam:
    """'sgd', 'adam' or 'adamw' with its keyword arguments."""
    if name == "sgd":
        return SGD(**kwargs)
    if name == "adam":
        return Adam(**kwargs)
    if name == "adamw":
        return AdamW(**kwargs)
    raise ValueError(f"unknown optimiser {name!r}: expected 'sgd', 'adam' or 'adamw'")
