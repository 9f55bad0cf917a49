"""Hidden-layer activations σ[l] and their derivatives σ[l]'.

Each activation is applied elementwise: ``A = σ(Z)``.  The derivative is written in terms of
``Z`` and ``A`` together because some are cheapest from the output (tanh' = 1 − A², σ' = A(1 − A)).
The backward pass of the notes then reads ``dZ = dA ∘ σ'(Z)``.  Each computes in Z's namespace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._array_api import is_numpy, namespace
from .functional import sigmoid as _sigmoid

Array = NDArray[np.floating]

LEAKY_SLOPE = 0.01


@dataclass(frozen=True)
class Activation:
    """σ and σ' of one activation; ``derivative(Z, A)`` returns σ'(Z) (A = σ(Z) given for speed)."""

    name: str
    forward: Callable[[Array], Array]
    derivative: Callable[[Array, Array], Array]


def _relu(Z: Array) -> Array:
    """σ(z) = max(0, z)."""
    xp = namespace(Z)
    return np.maximum(Z, 0) if is_numpy(xp) else xp.maximum(Z, xp.zeros_like(Z))


def _relu_prime(Z: Array, A: Array) -> Array:
    """σ'(z) = 1 if z > 0 else 0."""
    return namespace(Z).astype(Z > 0, Z.dtype)


def _leaky_relu(Z: Array) -> Array:
    """σ(z) = z if z > 0 else 0.01 z."""
    return namespace(Z).where(Z > 0, Z, Z * LEAKY_SLOPE)


def _leaky_relu_prime(Z: Array, A: Array) -> Array:
    """σ'(z) = 1 if z > 0 else 0.01."""
    xp = namespace(Z)
    if is_numpy(xp):
        return np.where(Z > 0, Z.dtype.type(1), Z.dtype.type(LEAKY_SLOPE))
    one = xp.ones_like(Z)
    return xp.where(Z > 0, one, one * LEAKY_SLOPE)


def _tanh_prime(Z: Array, A: Array) -> Array:
    """σ'(z) = 1 − tanh²(z) = 1 − A²."""
    return 1 - A * A


def _sigmoid_prime(Z: Array, A: Array) -> Array:
    """σ'(z) = σ(z)(1 − σ(z)) = A(1 − A)."""
    return A * (1 - A)


def _identity_prime(Z: Array, A: Array) -> Array:
    """σ'(z) = 1."""
    return namespace(Z).ones_like(Z)


ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in (
        Activation("relu", _relu, _relu_prime),
        Activation("leaky_relu", _leaky_relu, _leaky_relu_prime),
        Activation("tanh", lambda Z: namespace(Z).tanh(Z), _tanh_prime),
        Activation("sigmoid", lambda Z: namespace(Z).astype(_sigmoid(Z), Z.dtype, copy=False),
                   _sigmoid_prime),
        Activation("identity", lambda Z: Z, _identity_prime),
    )
}


def get_activation(name: str) -> Activation:
    """The activation called ``name``, or a ValueError listing the choices."""
    try:
        return ACTIVATIONS[name]
    except (KeyError, TypeError):
        choices = ", ".join(ACTIVATIONS)
        raise ValueError(f"unknown activation {name!r}: expected one of {choices}") from None
