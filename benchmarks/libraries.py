"""What each library does in each task, written as a competent user of that library would.

A measurement is a class built inside its own process (``worker.py``) from the data and the run's
settings.  ``warmup()`` runs once and is discarded; ``run()`` is one timed repetition and returns
a dict of numbers.  Only public API is used: ``softmaxreg``'s estimators, scikit-learn's
estimators, and a plain PyTorch loop.  The one exception is scikit-learn's exact fit, traced per
objective evaluation by wrapping ``scipy.optimize.minimize`` (scikit-learn has no callback that can
stop it), in that worker's process only.

The convex objective, for every library (the mean form of scikit-learn's C Σ CE + ½‖W‖²)::

    J(W, b) = (1/n) Σ_i CE(softmax(x_i Wᵀ + b), y_i) + ‖W‖² / (2 C n)
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

C = 1.0
NETWORK = {"hidden_layer_sizes": (128, 64), "learning_rate": 1e-3, "batch_size": 128, "alpha": 0.0}


# -- data -------------------------------------------------------------------------------------
@dataclass
class Data:
    X: np.ndarray  # (n, d) float32 (float64 for the float64 table)
    y: np.ndarray  # (n,) int64
    X_test: np.ndarray  # (n_test, d) float32
    y_test: np.ndarray  # (n_test,) int64

    @property
    def classes(self) -> np.ndarray:
        return np.unique(self.y)


def load_data(folder: str | Path, float64: bool = False) -> Data:
    """The arrays the driver saved, memory-mapped copy-on-write: every process reads the same
    bytes from the page cache, and a library that writes to its input gets a private page.
    Sparse X (saved as .npz) is read whole, as CSR."""
    def arr(name):
        path = Path(folder) / f"{name}.npz"
        if path.is_file():
            import scipy.sparse as sp

            return sp.load_npz(path).tocsr()
        return np.asarray(np.load(Path(folder) / f"{name}.npy", mmap_mode="c"))

    return Data(arr("X64" if float64 else "X"), arr("y"), arr("X_test"), arr("y_test"))


# -- the objective, evaluated independently in float64 -----------------------------------------
def objective(coef, intercept, X, y, C: float = C, block: int = 8192) -> float:
    """J(W, b) above, in float64, by blocks of rows (no float64 copy of X).

    coef (K, d), intercept (K,), X (n, d), y (n,) with labels 0..K-1.
    """
    W, b = np.asarray(coef, dtype=np.float64), np.asarray(intercept, dtype=np.float64)
    total = 0.0
    for start in range(0, X.shape[0], block):
        Z = X[start:start + block].astype(np.float64) @ W.T + b  # (block, K)
        top = Z.max(axis=1, keepdims=True)
        lse = top[:, 0] + np.log(np.exp(Z - top).sum(axis=1))
        total += float(np.sum(lse - Z[np.arange(Z.shape[0]), y[start:start + block]]))
    return total / X.shape[0] + float(np.sum(W * W)) / (2 * C * X.shape[0])


def relative_gap(J: float, f_star: float) -> float:
    return (J - f_star) / abs(f_star)


class GapReached(Exception):
    """Raised from an objective or callback to stop a solver once the target gap is met."""


class Stopped(Exception):
    """Raised to stop a solver that stalled or used its evaluation budget."""


class Trace:
    """(seconds since start, J) at every objective evaluation, stopping at the target gap.

    Also stops a solver that has stalled (over the last ``patience`` evaluations the best J came
    less than 1% closer to f*) or spent ``max_evals`` evaluations.
    """

    def __init__(self, f_star: float, gap: float, max_evals: int, patience: int = 50):
        self.f_star, self.gap, self.max_evals, self.patience = f_star, gap, max_evals, patience
        self.values: list[float] = []
        self.seconds = float("nan")
        self.reason = "solver stopped"
        self.start = time.perf_counter()

    def __call__(self, J: float) -> None:
        self.seconds = time.perf_counter() - self.start
        self.values.append(float(J))
        if relative_gap(J, self.f_star) <= self.gap:
            self.reason = "gap reached"
            raise GapReached
        if len(self.values) >= self.max_evals:
            self.reason = "evaluation budget spent"
            raise Stopped
        if len(self.values) > self.patience:
            before = min(self.values[:-self.patience])
            if before - min(self.values[-self.patience:]) < 0.01 * (before - self.f_star):
                self.reason = "stalled"
                raise Stopped

    def result(self) -> dict:
        best = min(self.values) if self.values else float("nan")
        return {"seconds": self.seconds, "gap": relative_gap(best, self.f_star),
                "evaluations": len(self.values), "reached": self.reason == "gap reached",
                "stop": self.reason}


def quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    out = quiet(fn, *args, **kwargs)
    return time.perf_counter() - start, out


# -- (a) exact fit ------------------------------------------------------------------------------
class ExactOurs:
    """``SoftmaxRegression(C=1)`` until the objective is within ``gap`` of f*.

    With a public ``callback(iteration, loss)`` on the estimator, one traced fit per repetition.
    Without it (today), monkeypatch-free: the warm-up finds the smallest ``max_iter`` k whose
    solution is within the gap (the gap evaluated in float64 from ``coef_``, outside the timing;
    L-BFGS is deterministic, so the fit with ``max_iter=k`` ends at the k-th iterate of a longer
    one), and each repetition times the whole ``fit(tol=0, max_iter=k)``.
    """

    def __init__(self, data: Data, spec: dict):
        from softmaxreg import SoftmaxRegression

        self.Model, self.data, self.spec = SoftmaxRegression, data, spec
        self.traced = "callback" in SoftmaxRegression().get_params()
        self.k = spec.get("hint") or None

    def _fit(self, max_iter: int):
        model = self.Model(C=C, tol=0.0, max_iter=max_iter)
        return timed(model.fit, self.data.X, self.data.y)

    def _gap(self, model) -> float:
        J = objective(model.coef_, model.intercept_, self.data.X, self.data.y)
        return relative_gap(J, self.spec["f_star"])

    def _traced_run(self, max_evals: int) -> dict:
        trace = Trace(self.spec["f_star"], self.spec["gap"], max_evals)
        try:
            quiet(self.Model(C=C, tol=0.0, max_iter=max_evals,
                             callback=lambda it, J: trace(J)).fit, self.data.X, self.data.y)
        except (GapReached, Stopped):
            pass
        out = trace.result()
        return {**out, "iterations": out.pop("evaluations"), "method": "callback"}

    def warmup(self) -> dict:
        if self.traced:
            return self._traced_run(self.spec["max_evals"])
        probes = self._calibrate()
        return {"method": "smallest max_iter reaching the gap", "iterations": self.k,
                "hint": self.k, "probes": probes}

    def run(self) -> dict:
        if self.traced:
            return self._traced_run(self.spec["max_evals"])
        if self.k is None:
            raise RuntimeError(f"no max_iter ≤ {self.spec['max_evals']} reaches the gap")
        seconds, model = self._fit(self.k)
        gap = self._gap(model)
        return {"seconds": seconds, "gap": gap, "iterations": self.k,
                "reached": gap <= self.spec["gap"], "method": "whole fit at max_iter=k"}

    def _calibrate(self) -> dict:
        """Smallest k ≤ max_evals with gap(k) ≤ target: gallop from the hint (else 16) to a
        bracket (lo fails or is 0, hi succeeds), then bisect."""
        target, top = self.spec["gap"], self.spec["max_evals"]
        probes: dict[int, float] = {}

        def ok(k):
            probes[k] = self._gap(self._fit(k)[1])
            return probes[k] <= target

        lo, hi, k, step = 0, None, min(self.k or 16, top), 8
        while hi is None:
            if ok(k):
                hi = k
            elif k >= top:
                self.k = None
                return {str(k): g for k, g in sorted(probes.items())}
            else:
                lo, k, step = k, min(top, k + step), 2 * step
        step = 4
        while lo == 0 and hi > 1:  # started at or above k*: walk down to a failure
            k = max(1, hi - step)
            if ok(k):
                hi, step = k, 2 * step
            else:
                lo = k
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (lo, mid) if ok(mid) else (mid, hi)
        self.k = hi
        return {str(k): g for k, g in sorted(probes.items())}


class ExactSklearn:
    """``LogisticRegression(solver="lbfgs", C=1)`` on the same X (float32 stays float32),
    traced at every objective evaluation of its ``scipy.optimize.minimize`` call."""

    def __init__(self, data: Data, spec: dict):
        from sklearn.linear_model import LogisticRegression

        self.Model, self.data, self.spec = LogisticRegression, data, spec

    def _traced(self, max_evals: int) -> dict:
        import scipy.optimize

        trace = Trace(self.spec["f_star"], self.spec["gap"], max_evals)
        original = scipy.optimize.minimize

        def minimize(fun, x0, *args, **kwargs):
            def traced(w, *a):
                J, g = fun(w, *a)
                trace(J)
                return J, g
            return original(traced, x0, *args, **kwargs)

        scipy.optimize.minimize = minimize
        try:
            quiet(self.Model(C=C, solver="lbfgs", tol=0.0, max_iter=max_evals).fit,
                  self.data.X, self.data.y)
        except (GapReached, Stopped):
            pass
        finally:
            scipy.optimize.minimize = original
        if not trace.values:
            raise RuntimeError("no objective evaluation was traced: scikit-learn no longer "
                               "calls scipy.optimize.minimize")
        return {**trace.result(), "method": "per evaluation (scipy.optimize.minimize wrapped)"}

    def warmup(self) -> dict:
        return self._traced(self.spec["warmup_evals"])

    def run(self) -> dict:
        return self._traced(self.spec["max_evals"])


def torch_rows(torch, X):
    """X as a tensor: a copy of dense X; sparse X as a sparse CSR tensor (never made dense), whose
    product with a dense W has a gradient with respect to W."""
    import scipy.sparse as sp

    if not sp.issparse(X):
        return torch.from_numpy(np.array(X))
    X = X.tocsr()
    return torch.sparse_csr_tensor(torch.from_numpy(X.indptr.astype(np.int64)),
                                   torch.from_numpy(X.indices.astype(np.int64)),
                                   torch.from_numpy(X.data), size=X.shape)


class ExactTorch:
    """``torch.optim.LBFGS`` (strong Wolfe, history 10) on the same objective, in float32; if
    float32 stalls before the gap (the warm-up finds out), the repetitions run in float64.  The
    hint ``"float64"`` (float32 stalled at an earlier thread setting) skips the float32 probe.
    Sparse X is a sparse CSR tensor: ``X @ Wᵀ`` is a sparse-dense product."""

    def __init__(self, data: Data, spec: dict):
        import torch

        self.torch, self.spec = torch, spec
        self.X = torch_rows(torch, data.X)
        self.y = torch.from_numpy(np.asarray(data.y, dtype=np.int64))
        self.dtype = "float64" if data.X.dtype == np.float64 else "float32"
        self.probe_float32 = self.dtype == "float32" and spec.get("hint") != "float64"
        if spec.get("hint") == "float64":
            self.dtype = "float64"

    def _traced(self, max_evals: int) -> dict:
        torch = self.torch
        dtype = getattr(torch, self.dtype)
        if self.X.dtype != dtype:
            self.X = self.X.to(dtype)  # once, in the warm-up: not timed
        X, trace = self.X, Trace(self.spec["f_star"], self.spec["gap"], max_evals)
        n, d = X.shape
        K = int(self.y.max()) + 1
        W = torch.zeros(K, d, dtype=dtype, requires_grad=True)
        b = torch.zeros(K, dtype=dtype, requires_grad=True)
        opt = torch.optim.LBFGS([W, b], lr=1, max_iter=max_evals, max_eval=max_evals,
                                history_size=10, tolerance_grad=0, tolerance_change=0,
                                line_search_fn="strong_wolfe")
        l2 = 1.0 / (C * n)

        def closure():
            opt.zero_grad()
            J = torch.nn.functional.cross_entropy(X @ W.T + b, self.y) + 0.5 * l2 * (W * W).sum()
            J.backward()
            trace(J.item())
            return J

        try:
            opt.step(closure)
        except (GapReached, Stopped):
            pass
        return {**trace.result(), "dtype": self.dtype}

    def warmup(self) -> dict:
        probe = None
        if self.probe_float32:
            probe = self._traced(self.spec["max_evals"])
            if probe["reached"]:
                return probe
            self.dtype = "float64"
        out = {**self._traced(self.spec["warmup_evals"]), "float32_probe": probe}
        return {**out, "hint": "float64"} if self.dtype == "float64" and probe else out

    def run(self) -> dict:
        return self._traced(self.spec["max_evals"])


# -- (a') the defaults ----------------------------------------------------------------------------
class DefaultOurs:
    """``SoftmaxRegression()`` as it comes: time to stop and the gap it reached."""

    def __init__(self, data: Data, spec: dict):
        from softmaxreg import SoftmaxRegression

        self.make, self.data, self.spec = SoftmaxRegression, data, spec

    def warmup(self) -> dict:
        return self.run()

    def run(self) -> dict:
        seconds, model = timed(self.make().fit, self.data.X, self.data.y)
        J = objective(model.coef_, model.intercept_, self.data.X, self.data.y)
        return {"seconds": seconds, "gap": relative_gap(J, self.spec["f_star"]),
                "iterations": int(np.max(model.n_iter_))}


class DefaultSklearn(DefaultOurs):
    """``LogisticRegression()`` as it comes (lbfgs, tol 1e-4, max_iter 100)."""

    def __init__(self, data: Data, spec: dict):
        from sklearn.linear_model import LogisticRegression

        self.make, self.data, self.spec = LogisticRegression, data, spec


# -- (b) the 784-128-64-10 network: one epoch of Adam ------------------------------------------
class EpochOurs:
    """One epoch of ``SoftmaxNetwork.partial_fit`` (Adam's state carries over between calls)."""

    def __init__(self, data: Data, spec: dict):
        from softmaxreg import SoftmaxNetwork

        self.data = data
        self.model = SoftmaxNetwork(NETWORK["hidden_layer_sizes"], solver="adam",
                                    learning_rate_init=NETWORK["learning_rate"],
                                    batch_size=NETWORK["batch_size"], alpha=NETWORK["alpha"],
                                    random_state=0)

    def warmup(self) -> dict:
        return self.run()

    def run(self) -> dict:
        seconds, _ = timed(self.model.partial_fit, self.data.X, self.data.y,
                           classes=self.data.classes)
        return {"seconds": seconds}


class EpochSklearn(EpochOurs):
    """One epoch of ``MLPClassifier.partial_fit``."""

    def __init__(self, data: Data, spec: dict):
        from sklearn.neural_network import MLPClassifier

        self.data = data
        self.model = MLPClassifier(NETWORK["hidden_layer_sizes"], solver="adam",
                                   learning_rate_init=NETWORK["learning_rate"],
                                   batch_size=NETWORK["batch_size"], alpha=NETWORK["alpha"],
                                   random_state=0)


class EpochTorch:
    """The plain PyTorch loop: ``randperm``, slices, ``F.cross_entropy``, ``torch.optim.Adam``."""

    def __init__(self, data: Data, spec: dict):
        import torch

        self.torch, self.data = torch, data
        self.X, self.y = torch.from_numpy(np.array(data.X)), torch.from_numpy(data.y)
        sizes = (data.X.shape[1], *NETWORK["hidden_layer_sizes"], len(data.classes))
        from references import torch_mlp  # once this worker has set torch's threads

        self.model = torch_mlp(sizes)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=NETWORK["learning_rate"])
        self.generator = torch.Generator().manual_seed(0)

    def epoch(self) -> None:
        F, bs = self.torch.nn.functional, NETWORK["batch_size"]
        perm = self.torch.randperm(self.X.shape[0], generator=self.generator)
        for start in range(0, self.X.shape[0], bs):
            idx = perm[start:start + bs]
            self.opt.zero_grad(set_to_none=True)
            F.cross_entropy(self.model(self.X[idx]), self.y[idx]).backward()
            self.opt.step()

    def warmup(self) -> dict:
        return self.run()

    def run(self) -> dict:
        seconds, _ = timed(self.epoch)
        return {"seconds": seconds}


# -- (b') test accuracy after the task's epochs ------------------------------------------------
class AccuracyOurs(EpochOurs):
    """A fresh fit of ``epochs`` epochs with the epoch task's settings, then test accuracy."""

    def __init__(self, data: Data, spec: dict):
        super().__init__(data, spec)
        self.epochs = spec["epochs"]

    def warmup(self) -> dict:
        return {}

    def run(self) -> dict:
        self.model.set_params(max_iter=self.epochs)
        seconds, _ = timed(self.model.fit, self.data.X, self.data.y)
        return {"seconds": seconds, "epochs": int(self.model.n_iter_),
                "test_accuracy": float(self.model.score(self.data.X_test, self.data.y_test))}


class AccuracyTorch(EpochTorch):
    """``epochs`` epochs of the plain loop, then test accuracy of the argmax."""

    def __init__(self, data: Data, spec: dict):
        super().__init__(data, spec)
        self.epochs = spec["epochs"]

    def warmup(self) -> dict:
        return {}

    def run(self) -> dict:
        torch = self.torch
        start = time.perf_counter()
        for _ in range(self.epochs):
            self.epoch()
        seconds = time.perf_counter() - start
        with torch.inference_mode():
            pred = self.model(torch.from_numpy(np.array(self.data.X_test))).argmax(dim=1)
        accuracy = float((pred.numpy() == self.data.y_test).mean())
        return {"seconds": seconds, "epochs": self.epochs, "test_accuracy": accuracy}


# -- (c) predict_proba throughput ---------------------------------------------------------------
class PredictOurs:
    """``predict_proba`` on the test rows, softmax regression and the network; the models are
    fitted briefly on a few rows (their weights do not change the work)."""

    def __init__(self, data: Data, spec: dict):
        from softmaxreg import SoftmaxNetwork, SoftmaxRegression

        self.X_test, self.calls = np.array(data.X_test), spec["predict_calls"]
        X, y = data.X[:2000], data.y[:2000]
        self.models = {
            "softmax": quiet(SoftmaxRegression(max_iter=5).fit, X, y),
            "network": quiet(SoftmaxNetwork(NETWORK["hidden_layer_sizes"], max_iter=1,
                                            random_state=0).fit, X, y),
        }

    def predict(self, model):
        return model.predict_proba(self.X_test)

    def warmup(self) -> dict:
        for model in self.models.values():
            self.predict(model)
        return {}

    def run(self) -> dict:
        out = {}
        for name, model in self.models.items():
            start = time.perf_counter()
            for _ in range(self.calls):
                self.predict(model)
            out[f"{name}_seconds"] = (time.perf_counter() - start) / self.calls
        return out


class PredictSklearn(PredictOurs):
    def __init__(self, data: Data, spec: dict):
        from sklearn.linear_model import LogisticRegression
        from sklearn.neural_network import MLPClassifier

        self.X_test, self.calls = np.array(data.X_test), spec["predict_calls"]
        X, y = data.X[:2000], data.y[:2000]
        self.models = {
            "softmax": quiet(LogisticRegression(max_iter=5).fit, X, y),
            "network": quiet(MLPClassifier(NETWORK["hidden_layer_sizes"], max_iter=1,
                                           random_state=0).fit, X, y),
        }


class PredictTorch(PredictOurs):
    """``softmax(model(X))`` under ``torch.inference_mode()``, returned as a NumPy array."""

    def __init__(self, data: Data, spec: dict):
        import torch

        self.torch, self.calls = torch, spec["predict_calls"]
        self.X_test = torch.from_numpy(np.array(data.X_test))
        d, K = data.X.shape[1], len(data.classes)
        from references import torch_mlp  # once this worker has set torch's threads

        self.models = {"softmax": torch_mlp((d, K)),
                       "network": torch_mlp((d, *NETWORK["hidden_layer_sizes"], K))}

    def predict(self, model):
        with self.torch.inference_mode():
            return self.torch.softmax(model(self.X_test), dim=1).numpy()


# -- f*: the optimum, for the gap -----------------------------------------------------------------
class FStar:
    """The C = 1 optimum, computed once in float64 with a tight tolerance (cached by the driver)."""

    def __init__(self, data: Data, spec: dict):
        from softmaxreg import SoftmaxRegression

        self.data = data
        self.model = SoftmaxRegression(C=C, tol=1e-10, max_iter=5000, dtype="float64")

    def warmup(self) -> dict:
        return {}

    def run(self) -> dict:
        X64 = self.data.X.astype(np.float64)
        seconds, model = timed(self.model.fit, X64, self.data.y)
        value = objective(model.coef_, model.intercept_, self.data.X, self.data.y)
        return {"f_star": value, "n_iter": int(np.max(model.n_iter_)), "seconds": seconds,
                "reported_loss": float(model.loss_)}


MEASUREMENTS = {
    ("exact", "ours"): ExactOurs, ("exact", "sklearn"): ExactSklearn,
    ("exact", "torch"): ExactTorch,
    ("exact64", "ours"): ExactOurs, ("exact64", "sklearn"): ExactSklearn,
    ("exact64", "torch"): ExactTorch,
    ("defaults", "ours"): DefaultOurs, ("defaults", "sklearn"): DefaultSklearn,
    ("epoch", "ours"): EpochOurs, ("epoch", "sklearn"): EpochSklearn,
    ("epoch", "torch"): EpochTorch,
    ("accuracy", "ours"): AccuracyOurs, ("accuracy", "torch"): AccuracyTorch,
    ("predict", "ours"): PredictOurs, ("predict", "sklearn"): PredictSklearn,
    ("predict", "torch"): PredictTorch,
    ("fstar", "ours"): FStar,
}
