"""Which array library computes: NumPy by default, or the namespace of the arrays given.

The math (``functional``, ``activations``, ``layers``, ``network``, ``objective``, ``optim``) is
written once against the array API standard: ``xp = namespace(Z)``, then ``xp.exp(Z)``,
``xp.sum(Z, axis=1)``, ….  NumPy arrays (and lists, scalars, scipy sparse matrices) get the
``numpy`` module itself — whose main namespace follows the standard since NumPy 2 — so the
default path pays nothing for the generality; PyTorch tensors, CuPy arrays and array-api-strict
arrays get their namespace from ``array_api_compat``, and stay on their device.

Where NumPy has a faster idiom than the standard's expression (``out=`` into a preallocated
buffer), :func:`into` keeps it for NumPy and falls back to the standard's expression elsewhere.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np
import scipy.sparse as sp
from array_api_compat import (
    array_namespace,
    is_array_api_obj,
    is_cupy_array,
    is_torch_array,
)
from array_api_compat import device as _device_of
from array_api_compat import numpy as _compat_numpy


class _NumPy:
    """NumPy's main namespace — an array-API namespace since NumPy 2 (np.astype, np.concat, …) —
    with the reductions and the cast that the math calls at every step bound to NumPy's C
    methods: np.sum's, np.max's and np.astype's Python wrappers cost 2–3 µs a call, about 1%
    of a minibatch epoch of the MNIST network.  Anything else is numpy's own attribute."""

    __name__ = "numpy"

    @staticmethod
    def sum(x, /, *, axis=None, dtype=None, keepdims=False):
        return np.add.reduce(x, axis=axis, dtype=dtype, keepdims=keepdims)  # what np.sum calls

    @staticmethod
    def max(x, /, *, axis=None, keepdims=False):
        return np.maximum.reduce(x, axis=axis, keepdims=keepdims)  # np.max's (NaN propagates)

    @staticmethod
    def astype(x, dtype, /, *, copy=True, device=None):
        return x.astype(dtype, copy=copy)

    @staticmethod
    def argmax(x, /, *, axis=None, keepdims=False):
        return x.argmax(axis=axis, keepdims=keepdims)

    def __getattr__(self, name):
        value = getattr(np, name)
        setattr(self, name, value)  # looked up once
        return value


# NumPy 1's main namespace is not an array-API namespace: array-api-compat's wrapper stands in
NUMPY = _NumPy() if hasattr(np, "astype") else _compat_numpy


_BY_TYPE: dict[type, ModuleType] = {np.ndarray: NUMPY}  # array type -> its namespace


def namespace(*arrays) -> ModuleType:
    """The namespace the arrays compute in: NumPy for NumPy arrays and for anything that is not
    an array-API array (lists, scalars, None, sparse matrices), else theirs (one for all).

    Called by every function of the math, so one array's namespace is looked up by its type
    (0.1 µs; array_api_compat's own lookup takes 5–10 µs, a GPU kernel's launch)."""
    if len(arrays) == 1 and (xp := _BY_TYPE.get(type(arrays[0]))) is not None:
        return xp
    found = [a for a in arrays if not isinstance(a, np.ndarray) and a is not None
             and not sp.issparse(a) and is_array_api_obj(a)]
    if not found:
        return NUMPY
    xp = array_namespace(*found)
    if len({type(a) for a in found}) == 1:
        _BY_TYPE[type(found[0])] = xp
    return xp


def is_numpy(xp) -> bool:
    return xp is NUMPY or xp is np or xp is _compat_numpy


def device(a):
    """The device ``a`` lives on ("cpu" for NumPy arrays and non-arrays)."""
    return "cpu" if isinstance(a, np.ndarray) or not is_array_api_obj(a) else _device_of(a)


def to_numpy(a):
    """``a`` as a NumPy array on the host (``a`` itself when it already is one; None stays None).

    What crosses from a device: θ and ∇J per L-BFGS evaluation, fitted models being saved.
    """
    if a is None or isinstance(a, np.ndarray):
        return a
    if is_torch_array(a):
        return a.detach().cpu().numpy()
    if is_cupy_array(a):
        return a.get()
    if is_array_api_obj(a):
        return np.from_dlpack(a)  # array-api-strict (any of its devices), JAX on the CPU, …
    return np.asarray(a)


def asarray(a, like, dtype=None):
    """``a`` (host or device) in the namespace and on the device of the array ``like``,
    converted to ``dtype`` (a NumPy dtype or dtype name; None keeps a's)."""
    xp = namespace(like)
    if is_numpy(xp):
        return np.asarray(to_numpy(a), dtype=dtype)
    dtype = None if dtype is None else dtype_of(xp, dtype)
    if namespace(a) is not xp:
        a = to_numpy(a)
    return xp.asarray(a, dtype=dtype, device=device(like))


def dtype_of(xp: ModuleType, dtype):
    """The dtype of namespace ``xp`` named like ``dtype`` (float32, int64, … of any namespace)."""
    return getattr(xp, numpy_dtype(dtype).name)


def numpy_dtype(dtype) -> np.dtype:
    """The NumPy dtype named like ``dtype`` of any namespace (torch.float32 -> float32)."""
    if isinstance(dtype, np.dtype) or isinstance(dtype, type) or isinstance(dtype, str):
        return np.dtype(dtype)
    name = str(dtype).rsplit(".", 1)[-1].strip("'>)")  # torch.float32, array_api_strict.float32
    return np.dtype(name)


def widest_float(xp: ModuleType, device_) -> object:
    """float64 where the device has it (not on Apple's MPS), else float32: what sums use."""
    if is_numpy(xp):
        return np.float64
    floats = xp.__array_namespace_info__().dtypes(device=device_, kind="real floating")
    return floats.get("float64", xp.float32)


_TORCH_OUT = {"matmul", "multiply", "divide", "sqrt", "sum"}  # same names and out= in torch


def into(out, name: str, *args, **kwargs):
    """``out[...] = xp.<name>(*args, **kwargs)`` without a temporary where the library allows it
    (NumPy's ``out=``, and PyTorch's for the functions of the same name: matmul, multiply,
    divide, sqrt, sum); the standard's expression elsewhere.  Returns ``out``."""
    if isinstance(out, np.ndarray):
        (np.add.reduce if name == "sum" else getattr(np, name))(*args, out=out, **kwargs)
    elif name in _TORCH_OUT and is_torch_array(out):
        import torch

        getattr(torch, name)(*args, out=out, **kwargs)
    else:
        out[...] = getattr(namespace(out), name)(*args, **kwargs)
    return out


def largest_abs(X) -> float:
    """max |x| over the stored values of X, dense, sparse or any namespace's array (0 for an
    empty X), in two passes and no copy of |X|."""
    values = X.data if sp.issparse(X) else X
    if 0 in values.shape:
        return 0.0
    xp = namespace(values)
    return float(max(xp.max(values), -xp.min(values)))
