"""SoftmaxRegression and SoftmaxNetwork: the scikit-learn face of the library.

The estimators validate input, encode labels, choose a solver and keep the fitted state; the math
lives in :mod:`softmaxreg.network`, the solvers in :mod:`softmaxreg.solvers` and
:mod:`softmaxreg.optim`, the loop in :mod:`softmaxreg.training`.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
from tqdm.auto import tqdm

from . import optim, solvers
from .exceptions import TrainingDivergedError
from .functional import log_softmax
from .network import Network
from .training import History, TrainConfig, train

_MAX_PRECONDITIONED_FEATURES = 4096
_DTYPES = {"float32": np.float32, "float64": np.float64}


class _SoftmaxBase(ClassifierMixin, BaseEstimator):
    """What both estimators share: validation, labels, weights, the choice of solver, prediction.

    A subclass says which hidden layers it has (``_hidden_sizes``), how strong the L2 penalty of
    the mean-form objective is (``_l2``), and how it initialises its parameters (``_init``).
    """

    _minibatch_solvers = ("sgd", "adam", "adamw")
    _default_lr = {"sgd": 0.01, "adam": 1e-3, "adamw": 1e-3}

    # -- fitting ----------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X`` (n × d, dense or sparse) and labels ``y`` (n,); returns self."""
        self._validate_params()
        X, y_enc, sw = self._prepare_fit(X, y, sample_weight)
        self._seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        net = self._network_for(X.shape[1])
        if self.solver == "lbfgs":
            self._fit_lbfgs(net, X, y_enc, sw)
        else:
            self._fit_minibatch(net, X, y_enc, sw)
        return self

    def _prepare_fit(self, X, y, sample_weight):
        X, y = validate_data(
            self, X, y, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32],
            reset=not self._warm(),
        )
        check_classification_targets(y)
        encoder = LabelEncoder().fit(y)
        if self._warm() and not np.array_equal(encoder.classes_, self.classes_):
            raise ValueError("warm_start=True needs the same classes as the previous fit")
        self.classes_ = encoder.classes_
        if len(self.classes_) < 2:
            raise ValueError(
                "This solver needs samples of at least 2 classes in the data, but the data "
                f"contains only one class: {self.classes_[0]!r}"
            )
        y_enc = encoder.transform(y)
        sw = _check_sample_weight(sample_weight, X, dtype=np.float64)
        if self.class_weight is not None:
            cw = compute_class_weight(self.class_weight, classes=self.classes_, y=y)
            sw = sw * cw[y_enc]
        if X.shape[0] and not sw.sum() > 0:
            raise ValueError("sample_weight must have a positive sum")
        return X, y_enc, (None if np.all(sw == 1) else sw)

    def _warm(self) -> bool:
        return bool(self.warm_start) and hasattr(self, "_net")

    def _dtype(self):
        if self.dtype == "auto":
            return np.float64 if self.solver == "lbfgs" else np.float32
        return _DTYPES[self.dtype]

    def _network_for(self, n_features: int) -> Network:
        K = len(self.classes_)
        sizes = (n_features, *self._hidden_sizes(), 1 if K == 2 else K)
        net = Network(
            sizes,
            activation=getattr(self, "activation", "identity"),
            output="sigmoid" if K == 2 else "softmax",
            dtype=self._dtype(),
            fit_intercept=getattr(self, "fit_intercept", True),
        )
        if self._warm() and self._net.layer_sizes == net.layer_sizes:
            net.params[...] = self._net.params
        else:
            self._init(net)
        self._set_network(net)
        return net

    def _fit_lbfgs(self, net: Network, X, y, sw) -> None:
        l2 = self._l2(X.shape[0] if sw is None else sw.sum(), X.shape[0])
        bar = tqdm(total=self.max_iter, desc="L-BFGS", unit="it", disable=not self.verbose)

        def progress(it, J):
            bar.update()
            bar.set_postfix(loss=f"{J:.6f}")

        try:
            res = solvers.lbfgs(net.objective(X, y, sw, l2), net.params, self.max_iter, self.tol,
                                callback=progress,
                                preconditioner=self._preconditioner(net, X, sw, l2))
        finally:
            bar.close()
        net.params[...] = res.x
        self._finish_full_batch(net, res)

    def _preconditioner(self, net: Network, X, sw, l2: float):
        return None

    def _finish_full_batch(self, net: Network, res: solvers.SolverResult) -> None:
        net._clear_caches()
        self.n_iter_ = np.array([res.n_iter], dtype=np.int32)
        self.loss_ = res.fun
        if not np.all(np.isfinite(net.params)):
            raise TrainingDivergedError("the L-BFGS solution is not finite; scale the data")
        if not res.converged:
            warnings.warn(
                f"lbfgs failed to converge after {res.n_iter} iterations ({res.message}). "
                "Increase max_iter, or scale the data (e.g. with sklearn's StandardScaler).",
                ConvergenceWarning,
                stacklevel=3,
            )

    def _fit_minibatch(self, net: Network, X, y, sw) -> None:
        validation = None
        if self.early_stopping:
            X, X_val, y, y_val, sw = self._validation_split(X, y, sw)
            validation = (X_val, y_val)
        batch_size = min(self.batch_size, X.shape[0])
        l2 = self._l2(X.shape[0] if sw is None else sw.sum(), batch_size)
        lr = self.learning_rate_init or self._default_lr[self.solver]
        config = TrainConfig(
            epochs=self.max_iter, batch_size=batch_size, l2=l2, seed=self._seed,
            early_stopping=self.early_stopping, n_iter_no_change=self.n_iter_no_change,
            tol=self.tol, progress=bool(self.verbose),
        )
        opt = self._optimizer(net).init(net.params)
        history = self.history_ if self._warm() and hasattr(self, "history_") else History()
        self.history_ = history
        try:
            train(net, opt, optim.make_schedule(self.learning_rate, lr, self.max_iter), X, y,
                  config, sample_weight=sw, validation=validation, history=history)
        finally:
            net._clear_caches()
            self.n_iter_ = history.n_epochs
            self.loss_curve_ = list(history.loss)
            self.loss_ = history.loss[-1] if history.loss else np.nan
        if history.n_epochs >= self.max_iter and not self.early_stopping:
            warnings.warn(
                f"Stochastic optimizer: maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet. Increase max_iter.",
                ConvergenceWarning, stacklevel=3,
            )

    def _validation_split(self, X, y, sw):
        idx = np.arange(X.shape[0])
        stratify = y if np.min(np.bincount(y)) >= 2 else None
        tr, va = train_test_split(idx, test_size=self.validation_fraction,
                                  random_state=self._seed, stratify=stratify)
        return X[tr], X[va], y[tr], y[va], (None if sw is None else sw[tr])

    def _optimizer(self, net: Network):
        if self.solver == "sgd":
            return optim.SGD(momentum=self.momentum, nesterov=self.nesterovs_momentum)
        decay = getattr(self, "weight_decay", 0.0) if self.solver == "adamw" else 0.0
        return optim.Adam(self.beta_1, self.beta_2, self.epsilon, weight_decay=decay,
                          decay_mask=net.penalty_mask)

    # -- prediction --------------------------------------------------------------------------
    def _validated(self, X):
        check_is_fitted(self)
        return validate_data(self, X, accept_sparse=("csr", "csc"),
                             dtype=[np.float64, np.float32], reset=False)

    def decision_function(self, X) -> np.ndarray:
        """The logits Z[L] = A[L-1] W[L]ᵀ + b[L]ᵀ: (n, K), or (n,) with two classes."""
        return self._net.decision_function(self._validated(X))

    def predict_proba(self, X) -> np.ndarray:
        """Ŷ = softmax(Z[L]), (n, K); with two classes [1 − σ(z), σ(z)]."""
        return self._net.predict_proba(self._validated(X))

    def predict_log_proba(self, X) -> np.ndarray:
        """log Ŷ, computed from the logits without taking log of a rounded probability."""
        Z = self.decision_function(X)
        if Z.ndim == 1:
            Z = np.column_stack([np.zeros_like(Z), Z])  # log σ(z), log(1−σ(z)) as a K = 2 softmax
        return log_softmax(Z)

    def predict(self, X) -> np.ndarray:
        """The class with the largest probability, as a label of ``classes_``."""
        Z = self.decision_function(X)
        idx = (Z > 0).astype(np.intp) if Z.ndim == 1 else Z.argmax(axis=1)
        return self.classes_[idx]

    def save(self, path) -> None:
        """Write the fitted model to ``path`` (.npz with JSON metadata; no pickle)."""
        from .persistence import save

        save(self, path)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


class SoftmaxRegression(_SoftmaxBase):
    """Multinomial logistic (softmax) regression: one layer, K softmax units.

    Minimises scikit-learn ``LogisticRegression``'s objective  C · Σ_i s_i CE_i + ½ ‖W‖²_F
    (intercepts unpenalised), in the equivalent mean form  Σ_i w_i CE_i + ‖W‖²/(2 C Σ s).
    With two classes the output is one sigmoid unit: ``coef_`` is (1, d), as in scikit-learn.

    Parameters follow LogisticRegression: ``C``, ``fit_intercept``, ``class_weight``, ``max_iter``
    (iterations of L-BFGS, or epochs of a minibatch solver), ``tol``, ``warm_start``,
    ``random_state``.  ``solver`` is "lbfgs" (full batch, the default) or "sgd", "adam", "adamw"
    (minibatches of ``batch_size`` rows, learning rate ``learning_rate_init`` under the schedule
    ``learning_rate``: "constant", "step" or "cosine").
    """

    _parameter_constraints = {
        "C": [Interval(Real, 0, None, closed="neither")],
        "fit_intercept": ["boolean"],
        "solver": [StrOptions({"lbfgs", "sgd", "adam", "adamw"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "step", "cosine"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither"), None],
        "momentum": [Interval(Real, 0, 1, closed="left")],
        "nesterovs_momentum": ["boolean"],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "dtype": [StrOptions({"auto", "float32", "float64"})],
        "verbose": ["verbose"],
    }

    def __init__(
        self,
        C=1.0,
        *,
        fit_intercept=True,
        solver="lbfgs",
        max_iter=100,
        tol=1e-4,
        class_weight=None,
        warm_start=False,
        random_state=None,
        batch_size=128,
        learning_rate="constant",
        learning_rate_init=None,
        momentum=0.9,
        nesterovs_momentum=True,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        dtype="auto",
        verbose=0,
    ):
        self.C = C
        self.fit_intercept = fit_intercept
        self.solver = solver
        self.max_iter = max_iter
        self.tol = tol
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.random_state = random_state
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.dtype = dtype
        self.verbose = verbose

    def _hidden_sizes(self) -> tuple[int, ...]:
        return ()

    def _l2(self, weight_sum: float, batch_size: int) -> float:
        """1 / (C Σ s): the mean-form penalty of LogisticRegression's objective, any batch size."""
        return 1.0 / (self.C * weight_sum)

    def _init(self, net: Network) -> None:
        net.params[...] = 0  # the problem is convex: start from zero, as scikit-learn does

    def _set_network(self, net: Network) -> None:
        self._net = net
        self.coef_ = net.W[0]  # (K, d) or (1, d): views into the flat parameter buffer
        self.intercept_ = net.b[0]

    def _preconditioner(self, net: Network, X, sw, l2: float):
        """L-BFGS in the variables U = W̃ L, where L Lᵀ bounds the Hessian (dense, d ≤ 4096)."""
        if sp.issparse(X) or X.shape[1] > _MAX_PRECONDITIONED_FEATURES:
            return None
        w = np.full(X.shape[0], 1.0 / X.shape[0]) if sw is None else sw / sw.sum()
        curvature = 0.5 if net.output == "softmax" else 0.25
        return solvers.BlockPreconditioner.from_hessian_bound(
            X, w, l2, curvature, net.layer_sizes[-1], self.fit_intercept
        )

    def _finish_full_batch(self, net, res) -> None:
        if net.output == "softmax" and self.fit_intercept:
            net.b[0][...] -= net.b[0].mean()  # softmax is shift invariant: centre the intercepts
        super()._finish_full_batch(net, res)


class SoftmaxNetwork(_SoftmaxBase):
    """A feed-forward network with ``hidden_layer_sizes`` and K softmax outputs (MLPClassifier's API).

    Objective per minibatch B (as MLPClassifier): mean cross-entropy + α/(2|B|) Σ_l ‖W[l]‖²
    (|B| = ``batch_size``; the full training set for ``solver="lbfgs"``).  Parameter names follow
    ``sklearn.neural_network.MLPClassifier`` wherever they mean the same.  ``coefs_[l]`` is
    ``W[l+1]ᵀ`` of shape (d_in, d_out), as in scikit-learn.
    """

    _parameter_constraints = {
        **{k: v for k, v in SoftmaxRegression._parameter_constraints.items()
           if k not in ("C", "fit_intercept")},
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"relu", "leaky_relu", "tanh", "sigmoid", "identity"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        hidden_layer_sizes=(128, 64),
        activation="relu",
        *,
        solver="adam",
        alpha=1e-4,
        batch_size=128,
        learning_rate="constant",
        learning_rate_init=None,
        max_iter=200,
        tol=1e-4,
        n_iter_no_change=10,
        momentum=0.9,
        nesterovs_momentum=True,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        weight_decay=0.0,
        early_stopping=False,
        validation_fraction=0.1,
        class_weight=None,
        warm_start=False,
        random_state=None,
        dtype="auto",
        verbose=0,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.tol = tol
        self.n_iter_no_change = n_iter_no_change
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.weight_decay = weight_decay
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.class_weight = class_weight
        self.warm_start = warm_start
        self.random_state = random_state
        self.dtype = dtype
        self.verbose = verbose

    def _hidden_sizes(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        if any(not isinstance(s, Integral) or s < 1 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers, got {sizes}")
        return tuple(int(s) for s in sizes)

    def _l2(self, weight_sum: float, batch_size: int) -> float:
        """α / |B|, as MLPClassifier scales its penalty by the batch size."""
        return self.alpha / batch_size

    def _init(self, net: Network) -> None:
        net.initialize(self._seed)

    def _set_network(self, net: Network) -> None:
        self._net = net
        self.coefs_ = [W.T for W in net.W]  # (d_in, d_out) each, scikit-learn's convention
        self.intercepts_ = list(net.b)
        self.n_layers_ = len(net.layer_sizes)
        self.n_outputs_ = net.layer_sizes[-1]
        self.out_activation_ = "logistic" if net.output == "sigmoid" else "softmax"
