"""The reference implementations we measure against: scikit-learn and PyTorch (CPU).

Each function here does the same job as one of ours, as a user of that tool would write it.
PyTorch is optional (``pip install -e ".[bench]"``); its rows are left out when it is missing.
"""

from __future__ import annotations

import time

import numpy as np

try:
    import torch
except ImportError:  # the bench extra is not installed
    torch = None


class GapReached(Exception):
    """Raised from inside an objective to stop a solver once the target gap is met."""


class ObjectiveTrace:
    """Records (seconds since start, J) at every objective evaluation; stops at the target."""

    def __init__(self, f_star: float, gap: float):
        self.f_star, self.gap = f_star, gap
        self.start = time.perf_counter()
        self.points: list[tuple[float, float]] = []

    def __call__(self, J: float) -> None:
        self.points.append((time.perf_counter() - self.start, float(J)))
        if (J - self.f_star) / abs(self.f_star) <= self.gap:
            raise GapReached

    @property
    def seconds(self) -> float:
        return self.points[-1][0] if self.points else float("nan")

    @property
    def final_gap(self) -> float:
        return (self.points[-1][1] - self.f_star) / abs(self.f_star) if self.points else np.nan


def sklearn_lbfgs_until(X, y, C, trace: ObjectiveTrace, max_iter=2000):
    """scikit-learn's LogisticRegression (lbfgs), timed until its objective reaches the gap.

    The objective it evaluates is read at its loss object's ``loss_gradient`` (the mean-form
    objective, the same function and scaling as ours), without changing what it computes.
    """
    import warnings

    from sklearn.linear_model import LogisticRegression
    from sklearn.linear_model._linear_loss import LinearModelLoss

    original = LinearModelLoss.loss_gradient

    def recorded(self, *args, **kwargs):
        loss, grad = original(self, *args, **kwargs)
        trace(loss)
        return loss, grad

    LinearModelLoss.loss_gradient = recorded
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            LogisticRegression(C=C, max_iter=max_iter, tol=1e-12).fit(X, y)
    except GapReached:
        pass
    finally:
        LinearModelLoss.loss_gradient = original
    return trace


def torch_lbfgs_until(X, y, C, trace: ObjectiveTrace, dtype="float64", max_iter=1000):
    """torch.optim.LBFGS (strong Wolfe line search) on the same mean-form objective."""
    tdtype = getattr(torch, dtype)
    Xt = torch.from_numpy(np.ascontiguousarray(X)).to(tdtype)
    yt = torch.from_numpy(np.asarray(y, dtype=np.int64))
    n, d = Xt.shape
    K = int(yt.max()) + 1
    W = torch.zeros(K, d, dtype=tdtype, requires_grad=True)
    b = torch.zeros(K, dtype=tdtype, requires_grad=True)
    l2 = 1.0 / (C * n)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=max_iter, history_size=10,
                            tolerance_grad=0, tolerance_change=0, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        J = torch.nn.functional.cross_entropy(Xt @ W.T + b, yt) + 0.5 * l2 * (W * W).sum()
        J.backward()
        trace(J.item())
        return J

    try:
        opt.step(closure)
    except GapReached:
        pass
    return trace


def torch_mlp(sizes, seed=0):
    torch.manual_seed(seed)
    layers = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def torch_epoch(model, opt, Xt, yt, batch_size, seed):
    """One epoch of minibatch training, the usual PyTorch loop (a shuffled index, moved to the
    data's device once, then slices)."""
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(Xt.shape[0], generator=g).to(Xt.device)
    loss_fn = torch.nn.CrossEntropyLoss()
    for start in range(0, Xt.shape[0], batch_size):
        idx = perm[start:start + batch_size]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(model(Xt[idx]), yt[idx])
        loss.backward()
        opt.step()


def torch_predict_proba(model, Xt):
    with torch.inference_mode():
        return torch.softmax(model(Xt), dim=1)


def torch_linear_from(W, b):
    """A torch Linear layer holding our weights, for like-for-like prediction timing."""
    layer = torch.nn.Linear(W.shape[1], W.shape[0])
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(np.asarray(W, dtype=np.float32)))
        layer.bias.copy_(torch.from_numpy(np.asarray(b, dtype=np.float32)))
    return layer
