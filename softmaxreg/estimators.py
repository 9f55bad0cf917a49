"""SoftmaxRegression and SoftmaxNetwork: the scikit-learn face of the library.

The estimators validate input, encode labels, turn ``sample_weight`` and ``class_weight`` into row
weights, choose a backend (:class:`~softmaxreg.objective.MemoryRows`, or
:class:`~softmaxreg.distributed.DaskRows` for Dask collections) and a solver, and keep the fitted
state; the math lives in :mod:`softmaxreg.network` and :mod:`softmaxreg.objective`, the solvers in
:mod:`softmaxreg.solvers`, :mod:`softmaxreg.proximal` and :mod:`softmaxreg.optim`, the minibatch
loop in :mod:`softmaxreg.training`.

Sparse ``X`` (scipy CSR/CSC) is never made dense: every product with it is a sparse product.

Under ``sklearn.config_context(array_api_dispatch=True)``, dense ``X`` of another array namespace
(PyTorch, CuPy, array-api-strict) is fitted where it is: the network's buffers, the optimiser's
state and every product live on X's device, and the fitted attributes and predictions come back
there, as scikit-learn's array-API estimators do.  Labels and weights (n values) are encoded on
the host, and ``classes_`` follows ``y``'s namespace, as in ``LogisticRegression``.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn import get_config
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import _check_partial_fit_first_call, check_classification_targets
from sklearn.utils.validation import (
    _check_sample_weight,
    assert_all_finite,
    check_is_fitted,
    validate_data,
)

from . import distributed, optim, proximal, solvers
from ._array_api import (
    asarray,
    device,
    is_numpy,
    largest_abs,
    namespace,
    numpy_dtype,
    to_numpy,
)
from .activations import ACTIVATIONS
from .callbacks import CallbackSupportMixin, FitTasks, fit_tasks, snapshot_of, with_callbacks
from .exceptions import TrainingDivergedError
from .functional import labels_from_logits, log_softmax
from .network import Network, NetworkSpec
from .objective import MemoryRows, Objective, Rows
from .persistence import model_kind
from .persistence import save as save_model
from .training import History, TrainConfig, train

_DTYPES = {"float32": np.float32, "float64": np.float64}
MINIBATCH_SOLVERS = ("sgd", "adam", "adamw")
REGRESSION_SOLVERS = ("lbfgs", "fista", "sgd", "adam")  # SoftmaxRegression's
NETWORK_SOLVERS = ("lbfgs", "sgd", "adam", "adamw")  # SoftmaxNetwork's
_ACCEPT_SPARSE = ("csr", "csc")


class _minibatch_only:
    """A method that exists only with a minibatch solver (``partial_fit``, as in MLPClassifier):
    ``hasattr`` is False otherwise, and the AttributeError says which solvers offer it."""

    def __init__(self, method):
        self.method = method
        functools.update_wrapper(self, method)

    def __get__(self, estimator, owner=None):
        if estimator is not None and estimator.solver not in MINIBATCH_SOLVERS:
            raise AttributeError(
                f"{type(estimator).__name__!r} has no attribute {self.method.__name__!r} with "
                f"solver={estimator.solver!r}, which works on the whole data at once: "
                f"{self.method.__name__} is available for the minibatch solvers "
                f"{', '.join(s for s in MINIBATCH_SOLVERS if s in owner._solvers)}"
            )
        return self.method.__get__(estimator, owner)


def _lazy_on_dask(method):
    """A prediction method that, given a Dask collection, maps itself over the row chunks."""

    @functools.wraps(method)
    def predict(self, X):
        if distributed.is_dask_collection(X):
            return distributed.map_rows(self, method.__name__, X)
        return method(self, X)

    return predict


class _SoftmaxBase(CallbackSupportMixin, ClassifierMixin, BaseEstimator):
    """What both estimators share: validation, labels, weights, the choice of solver, prediction.

    A subclass says which hidden layers it has (``_hidden_sizes``), how strong the penalties of
    the mean-form objective are (``_penalties``), how it initialises its parameters (``_init``),
    which full-batch solver it uses (``_full_batch_solver``) and which fitted attributes it
    exposes (``_set_network``, ``_set_n_iter``).

    Besides the public fitted attributes, ``_input_max_abs_`` is the largest |x| of the
    training features (:meth:`_seen_range`), which a model file keeps (``input_max_abs``).
    """

    _default_lr = {"sgd": 0.01, "adam": 1e-3, "adamw": 1e-3}

    # -- fitting ----------------------------------------------------------------------------
    @with_callbacks
    def fit(self, X, y, sample_weight=None):
        """Fit the model to ``X`` (n × d, dense or sparse) and labels ``y`` (n,); returns self.

        With ``warm_start=True`` a refit on data of the same shape starts from the last solution.
        Dask arrays and DataFrames are fitted where their chunks are, on the cluster of the
        current ``dask.distributed`` Client (:mod:`softmaxreg.distributed`).
        """
        self._validate_params()
        self._check_solver()
        if distributed.is_dask_collection(X):
            rows = self._dask_rows(X, y, sample_weight)
        else:
            rows = self._memory_rows(X, y, sample_weight)
        net = self._start_network(rows)
        minibatch = self.solver in MINIBATCH_SOLVERS
        task = "epoch" if minibatch else "iteration"
        with fit_tasks(self, f"fit: {task}", self.max_iter, X, y) as tasks:
            if minibatch:
                self._fit_minibatch(net, rows, tasks)
            else:
                self._fit_full_batch(net, rows, tasks)
        return self

    def _memory_rows(self, X, y, sample_weight) -> MemoryRows:
        X, y = _validate_xy(self, X, y, reset=not self._warm())
        y_host = to_numpy(y)  # labels are few: encoded on the host, as scikit-learn does
        classes, y_enc = np.unique(y_host, return_inverse=True)
        self._set_classes(classes if isinstance(y, np.ndarray) else asarray(classes, y))
        sw = _sample_weight(sample_weight, X)
        sw = self._row_weights(y_enc, sw, np.bincount(y_enc, weights=sw, minlength=len(classes)))
        X, y_enc, sw = _drop_unweighted(X, y_enc, sw)
        dtype = self._dtype(X.dtype, self._seen_range(largest_abs(X), reset=True))
        return MemoryRows(_as_network_input(X, dtype, self.solver in MINIBATCH_SOLVERS), y_enc, sw)

    def _dask_rows(self, X, y, sample_weight) -> Rows:
        if self.early_stopping:
            raise ValueError("early_stopping is not available on Dask data: hold out a "
                             "validation set yourself and compare scores between fits")
        data = distributed.scan(X, y, sample_weight)
        if self._warm() and data.n_features != self.n_features_in_:
            raise ValueError(f"X has {data.n_features} features, but {type(self).__name__} is "
                             f"expecting {self.n_features_in_} features as input")
        self.n_features_in_ = data.n_features
        if data.columns is not None and all(isinstance(c, str) for c in data.columns):
            self.feature_names_in_ = np.asarray(data.columns, dtype=object)
        else:
            self.__dict__.pop("feature_names_in_", None)
        self._set_classes(data.classes)
        cw = self._class_weights(data.class_totals)
        _check_weighted_classes(data.classes, data.class_totals)
        return data.prepare(cw, self._dtype(data.dtype, self._seen_range(data.top, reset=True)))

    @_minibatch_only
    @with_callbacks
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch of minibatch steps of ``solver`` over the chunk (X, y); returns self.

        ``classes`` (every label the stream will contain) is required on the first call.  The
        optimiser's state (momentum, Adam moments, step count) carries over between calls, so
        feeding the data chunk by chunk continues one training run.  The penalty is that of the
        chunk's objective; early stopping does not apply.
        """
        self._validate_params()
        self._check_solver()
        first = not hasattr(self, "network_")
        if first:
            self.__dict__.pop("classes_", None)  # a failed first call must not count as one
        _check_partial_fit_first_call(self, classes)
        _check_two_classes(self.classes_)
        X, y = _validate_xy(self, X, y, reset=first)
        y_enc = self._encode(to_numpy(y))
        if isinstance(self.class_weight, str):
            raise ValueError(
                "class_weight 'balanced' is not supported for partial_fit: a chunk does not "
                "show the class frequencies of the whole stream. Compute the weights with "
                "sklearn.utils.class_weight.compute_class_weight('balanced', classes=classes, "
                "y=y) on a large enough sample of the labels and pass them as a dict."
            )
        sw = self._row_weights(y_enc, _sample_weight(sample_weight, X), None)
        top = self._seen_range(largest_abs(X), reset=first)
        if first:
            self._seed = int(check_random_state(self.random_state).randint(2**31 - 1))
            dtype = self._dtype(X.dtype, top)
            self._set_network(self._new_network(X.shape[1], dtype, namespace(X), device(X)))
            self.history_ = History()
            self._opt, self._epochs_done = None, 0
        net = self.network_
        X, y_enc, sw = _drop_unweighted(_as_network_input(X, net.dtype, True), y_enc, sw)
        if getattr(self, "_opt", None) is None or self._opt_solver != self.solver:
            self._new_optimizer(net)
        with fit_tasks(self, "partial_fit: epoch", 1, X, y) as tasks:
            self._run_epochs(net, MemoryRows(X, y_enc, sw), 1, tasks)
        return self

    def _check_solver(self) -> None:
        """Settings that are valid alone but not together (subclasses add theirs)."""

    def _warm(self) -> bool:
        return bool(self.warm_start) and hasattr(self, "network_")

    def _set_classes(self, classes) -> None:
        """``classes_``: host labels, or (array API) the labels in ``y``'s namespace."""
        new = to_numpy(classes)
        if self._warm() and not np.array_equal(new, self._host_classes()):
            raise ValueError(
                "warm_start=True needs the same classes as the previous fit: got "
                f"{new.tolist()}, expected {self._host_classes().tolist()}"
            )
        self.classes_ = classes
        _check_two_classes(new)

    def _host_classes(self) -> np.ndarray:
        return to_numpy(self.classes_)

    def _encode(self, y) -> np.ndarray:
        """Labels -> indices into ``classes_``, with a clear error for a label never declared."""
        classes = self._host_classes()
        K = len(classes)
        y_enc = np.searchsorted(classes, y)
        known = classes[np.minimum(y_enc, K - 1)] == y
        if not np.all(known):
            unseen = np.unique(np.asarray(y)[~known]).tolist()
            raise ValueError(
                f"y contains labels {unseen} that are not in classes {classes.tolist()}; "
                "pass every label of the stream as `classes` on the first call to partial_fit"
            )
        return y_enc

    def _class_weights(self, class_totals) -> np.ndarray | None:
        """class_weight[k] for k = 0..K−1 (0 for a class without weight), None without one.

        With the meaning of LogisticRegression: "balanced" weights are n / (K · Σ_{i: y_i = k} s_i)
        with the sample weights counted in.  ``class_totals`` None: a dict only (partial_fit).
        """
        if self.class_weight is None:
            return None
        classes = self._host_classes()
        if isinstance(self.class_weight, str):
            with np.errstate(divide="ignore"):
                cw = class_totals.sum() / (len(classes) * class_totals)
        else:
            cw = compute_class_weight(self.class_weight, classes=classes, y=classes)
        return cw if class_totals is None else np.where(class_totals > 0, cw, 0.0)

    def _row_weights(self, y_enc, sw, class_totals):
        """s_i = sample_weight_i · class_weight[y_i], or None when every s_i = 1."""
        cw = self._class_weights(class_totals)
        if class_totals is not None:
            _check_weighted_classes(self._host_classes(), class_totals)
        if cw is not None:
            sw = sw * cw[y_enc]
        if not sw.sum() > 0:
            raise ValueError("sample_weight must have a positive sum: every row has weight 0")
        return None if np.all(sw == 1) else sw

    def _seen_range(self, top: float, reset: bool) -> float:
        """Record ``_input_max_abs_``, the largest |x| of the training features: ``top``, that
        of the rows just validated, for a fit (``reset``) or a first ``partial_fit``, else the
        larger of it and the chunks' before. A model file keeps it, so that pictures of digits
        are made in the range the model was trained on (0..1 for ``X / 16``, not 0..16);
        returns ``top``."""
        seen = 0.0 if reset else getattr(self, "_input_max_abs_", 0.0)
        self._input_max_abs_ = max(seen, float(top))
        return top

    def _dtype(self, input_dtype, top: float):
        """The network's float type: the input's for full-batch solvers (no float64 copy of X),
        float32 for minibatch ones (unless the data's largest |x|, ``top``, exceeds float32's
        range, 3.4e38), unless ``dtype`` says otherwise."""
        if self.dtype == "auto":
            small = self.solver in MINIBATCH_SOLVERS and top <= np.finfo(np.float32).max
            return np.dtype(np.float32 if small else numpy_dtype(input_dtype))
        return np.dtype(_DTYPES[self.dtype])

    def _new_network(self, n_features: int, dtype, xp=None, device=None) -> Network:
        """A freshly initialised network d → hidden → K softmax units (1 sigmoid unit for K = 2),
        its buffers in namespace ``xp`` on ``device`` (NumPy by default)."""
        K = self.classes_.shape[0]
        net = NetworkSpec(
            (n_features, *self._hidden_sizes(), 1 if K == 2 else K),
            activation=getattr(self, "activation", "identity"),
            output="sigmoid" if K == 2 else "softmax",
            dtype=np.dtype(dtype).name,
            fit_intercept=getattr(self, "fit_intercept", True),
        ).build(xp=xp, device=device)
        self._init(net)
        return net

    def _start_network(self, rows: Rows) -> Network:
        """The network ``fit`` starts from, where the rows are: the previous solution under
        ``warm_start``."""
        self._seed = int(check_random_state(self.random_state).randint(2**31 - 1))
        net = self._new_network(rows.n_features, rows.dtype, rows.xp, rows.device)
        if self._warm() and self.network_.layer_sizes == net.layer_sizes:
            net.set_params(self.network_.params)
        self._set_network(net)
        return net

    # -- full-batch solvers ------------------------------------------------------------------
    def _fit_full_batch(self, net: Network, rows: Rows, tasks: FitTasks) -> None:
        l1, l2 = self._penalties(rows.n, rows.total_weight, rows.n)
        fun = Objective(rows, net, l2)
        self.loss_curve_ = []  # the objective J per iteration

        def progress(it, J, theta):  # the callbacks see the model as it is after iteration it
            self.loss_curve_.append(float(J))
            return tasks.step("iteration", lambda: snapshot_of(net, theta))

        theta = to_numpy(net.params)  # the solvers run on the host; θ and ∇J cross per step
        if self.solver == "fista":
            res = proximal.fista(fun, theta, l1, net.penalty_mask, self.max_iter, self.tol,
                                 callback=progress)
        else:
            res = self._full_batch_solver(fun, theta, self.max_iter, self.tol, callback=progress)
        net.set_params(res.x)
        self._finish_full_batch(net, res)
        linear = len(net.layer_sizes) == 2  # (a network separating its data is no news)
        if linear and res.converged and l1 + l2 < 1e-6 and rows.separates(net):
            warnings.warn(
                "the training classes are perfectly separable and the penalty is negligible "
                f"(strength {l1 + l2:.2g}): the loss keeps falling as the weights grow, so the "
                f"fit stopped only because the gradient fell below tol={self.tol} (largest "
                f"|weight| {np.abs(res.x).max():.3g}). Weights and probabilities are set by "
                "tol, not by the data; a smaller C gives a well-defined solution.",
                ConvergenceWarning, stacklevel=3)

    _full_batch_solver = staticmethod(solvers.lbfgs)

    def _finish_full_batch(self, net: Network, res: solvers.SolverResult) -> None:
        net.clear_caches()
        self._set_n_iter(res.n_iter)
        self.loss_ = res.fun
        if not np.all(np.isfinite(res.x)):
            raise TrainingDivergedError(f"the {self.solver} solution is not finite; scale the data")
        if not res.converged:  # more iterations help only a fit that ran out of them
            more = (f"Increase the number of iterations (max_iter={self.max_iter}) or scale"
                    if res.n_iter >= self.max_iter else "A larger max_iter would not help: scale")
            warnings.warn(
                f"{self.solver} failed to converge after {res.n_iter} iteration(s) "
                f"({res.message}). {more} the data, e.g. with "
                "sklearn.preprocessing.StandardScaler.",
                ConvergenceWarning,
                stacklevel=3,
            )

    # -- minibatch solvers -------------------------------------------------------------------
    def _fit_minibatch(self, net: Network, rows: Rows, tasks: FitTasks) -> None:
        validation = None
        if self.early_stopping:
            rows, validation = self._validation_split(rows)
        if not (self._warm() and hasattr(self, "history_")):
            self.history_ = History()
        self._new_optimizer(net)
        n_run = self._run_epochs(net, rows, self.max_iter, tasks, validation, fresh=True)
        if n_run >= self.max_iter:  # neither the loss nor early stopping said "converged"
            warnings.warn(
                f"Stochastic optimizer: maximum iterations ({self.max_iter}) reached and the "
                "optimization hasn't converged yet. Increase max_iter (or tune "
                "learning_rate_init).",
                ConvergenceWarning, stacklevel=3,
            )
        self._warn_if_learned_little(rows)

    def _warn_if_learned_little(self, rows: Rows) -> None:
        """Warn when the training loss stays above half that of always predicting the class
        frequencies, H(p) = −Σ_k p_k log p_k: the fit stopped without learning much."""
        if not isinstance(rows, MemoryRows):
            return
        K = self.classes_.shape[0]
        p = np.bincount(rows.y, weights=rows.s, minlength=K) / rows.total_weight
        null = float(-np.sum(p[p > 0] * np.log(p[p > 0])))
        if not self.loss_ > 0.5 * null:
            return
        rms = _largest_column_rms(rows.X)
        advice = (f"Its features have a root mean square of up to {rms:.3g}, and minibatch "
                  "training learns best on features of order 1: scale them, e.g. with "
                  "sklearn.preprocessing.StandardScaler."
                  if rms > 10 else
                  "Train longer (max_iter) or with a larger learning_rate_init.")
        warnings.warn(
            f"{type(self).__name__} learned little: its training loss {self.loss_:.3g} is "
            f"{self.loss_ / null:.0%} of the loss of always predicting the class frequencies "
            f"({null:.3g}). {advice}", ConvergenceWarning, stacklevel=4)

    def _run_epochs(self, net: Network, rows: Rows, n_epochs: int, tasks: FitTasks,
                    validation=None, fresh: bool = False) -> int:
        """``n_epochs`` epochs of the optimiser over the rows; returns how many ran.

        A ``fresh`` run (``fit``) counts its epochs from 0; otherwise (``partial_fit``) the epoch
        count, which seeds the shuffling and drives the schedule, continues from the last call.
        In memory the loop is given the arrays, so that checkpoint hooks see the data.
        """
        start = 0 if fresh else self._epochs_done
        batch_size = min(self.batch_size, rows.n)
        _, l2 = self._penalties(rows.n, rows.total_weight, batch_size)
        lr = self.learning_rate_init or self._default_lr[self.solver]
        config = TrainConfig(
            epochs=start + n_epochs, start_epoch=start, batch_size=batch_size, l2=l2,
            seed=self._seed, early_stopping=self.early_stopping and fresh,
            n_iter_no_change=self.n_iter_no_change, tol=self.tol, progress=False,
        )
        data = (rows.X, rows.y, rows.s) if isinstance(rows, MemoryRows) else (rows, None, None)
        before = self.history_.n_epochs

        def epoch_done(epoch, logs):  # the callbacks see the model after each epoch
            self.loss_curve_ = list(self.history_.loss)
            return tasks.step("epoch", lambda: snapshot_of(net))

        try:
            train(net, self._opt, optim.make_schedule(self.learning_rate, lr, self.max_iter),
                  data[0], data[1], config, sample_weight=data[2], validation=validation,
                  history=self.history_, callbacks=[epoch_done])
        finally:
            net.clear_caches()
            n_run = self.history_.n_epochs - before
            self._epochs_done = start + n_run
            self._set_n_iter(self._epochs_done)
            self._set_curves(fresh, n_run * rows.n, config.early_stopping)
        return n_run

    def _set_curves(self, fresh: bool, samples: int, early_stopping: bool) -> None:
        """MLPClassifier's record of a minibatch fit: ``loss_curve_`` (per epoch), ``loss_``,
        ``t_`` (samples seen), ``best_loss_``, or with early stopping ``validation_scores_``
        (accuracy per epoch) and ``best_validation_score_``."""
        h = self.history_
        self.loss_curve_ = list(h.loss)
        self.loss_ = h.loss[-1] if h.loss else np.nan
        self.t_ = (0 if fresh else getattr(self, "t_", 0)) + samples
        self.validation_scores_ = list(h.val_accuracy) if early_stopping else None
        self.best_validation_score_ = max(h.val_accuracy, default=None) if early_stopping else None
        self.best_loss_ = None if early_stopping else min(h.loss, default=np.nan)

    def _validation_split(self, rows: MemoryRows):
        """The rows of the training part and the held-out ``validation`` tuple for early
        stopping, whose loss is weighted like the training loss.  The split is stratified when
        the validation part can hold every class."""
        X, y, sw = rows.X, rows.y, rows.s
        n, K = X.shape[0], self.classes_.shape[0]
        n_val = int(np.ceil(self.validation_fraction * n))
        if n_val >= n:
            raise ValueError(
                f"early_stopping needs more rows: validation_fraction={self.validation_fraction} "
                f"of {n} rows leaves none to train on"
            )
        counts = np.bincount(y, minlength=K)
        stratify = y if n_val >= K and n - n_val >= K and counts.min() >= 2 else None
        tr, va = train_test_split(np.arange(n), test_size=n_val, random_state=self._seed,
                                  stratify=stratify)
        X_tr, X_va = _take_rows(X, tr), _take_rows(X, va)
        if sw is None:
            return MemoryRows(X_tr, y[tr]), (X_va, y[va])
        return MemoryRows(X_tr, y[tr], sw[tr]), (X_va, y[va], sw[va])

    def _new_optimizer(self, net: Network) -> None:
        """The optimiser of ``solver``, with fresh state; it lives on as long as the fit."""
        if self.solver == "sgd":
            kwargs = {"momentum": self.momentum, "nesterov": self.nesterovs_momentum}
        else:  # Adam's decoupled decay (AdamW) acts on the weights only, as the L2 penalty does
            kwargs = {"beta_1": self.beta_1, "beta_2": self.beta_2, "epsilon": self.epsilon,
                      "decay_mask": net.penalty_mask}
            if self.solver == "adamw" and self.weight_decay is not None:
                kwargs["weight_decay"] = self.weight_decay
        opt = optim.make_optimizer(self.solver, **kwargs)
        self._opt, self._opt_solver = opt.init(net.params), self.solver

    # -- prediction --------------------------------------------------------------------------
    def _logits(self, X, method: str):
        """Z[L] for validated X (n, d[L]), in X's namespace and on its device.

        Without hidden layers, NaN or ±inf anywhere in X makes its row of Z = X Wᵀ + bᵀ
        non-finite (inf·0 and inf − inf are NaN), so X is scanned for them (scikit-learn's error)
        only when Z is not finite: one pass over X less per prediction.  Hidden layers can map
        inf to finite values (tanh, relu of −inf), so networks scan X first.
        """
        check_is_fitted(self)
        self._check_same_namespace(X, method)
        net = self.network_
        linear = len(net.layers) == 1
        X = validate_data(self, X, accept_sparse=_ACCEPT_SPARSE,
                          dtype=_float_dtypes(X), reset=False, ensure_all_finite=not linear)
        if namespace(X) is not net.xp or device(X) != net.device:
            net = net.to_numpy()  # (dispatch off: X was made NumPy; the model follows it)
        Z = net.logits(X)
        xp = namespace(Z)
        if bool(xp.all(xp.isfinite(Z))):
            return Z
        if linear:
            assert_all_finite(X.data if sp.issparse(X) else X, input_name="X")
        return _finite_logits(net, X, Z)

    def _check_same_namespace(self, X, method: str) -> None:
        """Under array-API dispatch, X must be where the model was fitted (scikit-learn's rule
        and message); move a model with sklearn.utils._array_api.move_estimator_to."""
        if not get_config()["array_api_dispatch"] or distributed.is_dask_collection(X):
            return
        net = self.network_
        if namespace(X) is net.xp and device(X) == net.device:
            return
        raise ValueError(
            f"Inputs passed to {type(self).__name__}.{method}() must use the same namespace and "
            f"the same device as those passed to fit(): the model computes with "
            f"{net.xp.__name__} on {net.device}, X is a {type(X).__name__} on {device(X)}. "
            "Move the model with sklearn.utils._array_api.move_estimator_to(estimator, xp, "
            "device), or X to the model's device."
        )

    @_lazy_on_dask
    def decision_function(self, X) -> np.ndarray:
        """The logits Z[L] = A[L-1] W[L]ᵀ + b[L]ᵀ: (n, K), or (n,) with two classes."""
        Z = self._logits(X, "decision_function")
        return Z[:, 0] if Z.shape[1] == 1 else Z

    @_lazy_on_dask
    def predict_proba(self, X) -> np.ndarray:
        """Ŷ = softmax(Z[L]), (n, K); with two classes [1 − σ(z), σ(z)]."""
        Z = self._logits(X, "predict_proba")  # first: NotFittedError before network_ is used
        return self.network_.proba_from_logits(Z)

    def predict_log_proba(self, X) -> np.ndarray:
        """log Ŷ = log_softmax(Z[L]), from the logits rather than the log of a rounded probability.

        Where ``predict_proba`` underflows to exactly 0 the result is −inf, so that it stays
        log(predict_proba) wherever that is finite and orders the classes the same way.
        """
        if distributed.is_dask_collection(X):
            Z = self.decision_function(X)
        else:
            Z = self._logits(X, "predict_log_proba")
            Z = Z[:, 0] if Z.shape[1] == 1 else Z
        P = self.network_.proba_from_logits(Z)
        xp = namespace(Z)
        if Z.ndim == 1:  # log σ(−z), log σ(z) as a K = 2 softmax
            Z = xp.stack([xp.zeros_like(Z), Z], axis=1)
        log_P = log_softmax(Z)
        if is_numpy(xp):
            log_P[P == 0] = -np.inf
            return log_P
        return xp.where(P == 0, xp.full_like(log_P, -np.inf), log_P)

    @_lazy_on_dask
    def predict(self, X) -> np.ndarray:
        """The class with the largest probability, as a label of ``classes_`` (in X's namespace
        and on its device unless the labels are strings, as in scikit-learn)."""
        Z = self._logits(X, "predict")  # first: NotFittedError before classes_ is used
        k = labels_from_logits(Z)
        classes = self.classes_
        if isinstance(classes, np.ndarray) and isinstance(k, np.ndarray):
            return classes[k]
        xp = namespace(k)
        if namespace(classes) is xp and device(classes) == device(k):
            return xp.take(classes, k, axis=0)
        labels = to_numpy(classes)[to_numpy(k)]
        return labels if labels.dtype.kind in "OSU" else asarray(labels, k)

    # -- model files and pickling: the network is rebuilt from its spec and flat buffer ------
    def save(self, path, *, scaling=None, metadata: dict | None = None) -> None:
        """Write the fitted model to ``path`` (.npz with JSON metadata; no pickle); a model
        fitted on a device is stored from a host (NumPy) copy."""
        check_is_fitted(self)
        host = self if isinstance(self.network_.params, np.ndarray) else \
            self.__sklearn_array_api_convert__(to_numpy)
        save_model(host, path, scaling=scaling, metadata=metadata)

    @classmethod
    def from_network(cls, network: Network, classes, *, feature_names=None,
                     input_max_abs: float | None = None, **params):
        """A fitted estimator of ``network`` (d[0] features; K softmax units, or 1 sigmoid unit
        for two classes) predicting ``classes``, with the constructor's ``params``: what a
        model file or a checkpoint restores. ``input_max_abs``: the largest |x| it was trained
        on, when known (``_input_max_abs_``)."""
        estimator = cls(**params)
        estimator._validate_params()
        estimator.classes_ = np.asarray(classes)
        estimator.n_features_in_ = network.layer_sizes[0]
        if feature_names is not None:
            estimator.feature_names_in_ = np.asarray(feature_names, dtype=object)
        if input_max_abs is not None:
            estimator._input_max_abs_ = float(input_max_abs)
        estimator._set_network(network)
        return estimator

    def __sklearn_array_api_convert__(self, converter):
        """What ``sklearn.utils._array_api.move_estimator_to`` calls: a copy of this fitted
        estimator whose arrays (θ and its views, numeric ``classes_``, ``n_iter_``, the
        optimiser's state) are ``converter(array)`` — moved to another namespace or device."""
        moved = clone(self)
        moved.__dict__.update(self.__dict__)
        if hasattr(self, "network_"):
            net = self.network_
            moved._set_network(net.spec.build(converter(net.params)))
            if to_numpy(self.classes_).dtype.kind in "biuf":
                moved.classes_ = converter(self.classes_)
            moved._set_n_iter(_iterations(self.n_iter_))
            if getattr(self, "_opt", None) is not None:
                moved._opt = copy.copy(self._opt).init(moved.network_.params)
                moved._opt.load_state_dict(self._opt.state_dict())
        return moved

    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ gives __dict__ itself
        net = state.pop("network_", None)
        if net is not None:
            state["network_"] = (net.spec, net.params)
        return state

    def __setstate__(self, state):
        saved = state.pop("network_", None)
        super().__setstate__(state)
        if saved is not None:
            spec, params = saved
            self._set_network(spec.build(params))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.array_api_support = True
        return tags


def _finite_logits(net: Network, X, Z):
    """Z recomputed in float64 where the model's dtype overflowed (a float32 model given rows
    beyond 3.4e38, or weights near that limit), else ValueError: a prediction from logits
    that are not finite would be NaN, and argmax of NaN is class 0."""
    if net.dtype != np.float64:
        wide = dataclasses.replace(net.spec, dtype="float64")
        Z = wide.build(net.params, xp=net.xp, device=net.device).logits(X)
    xp = namespace(Z)
    bad = ~xp.all(xp.isfinite(Z), axis=1)
    if bool(xp.any(bad)):
        rows = np.flatnonzero(to_numpy(bad))
        raise ValueError(
            f"the model's logits are not finite for {rows.size} of {Z.shape[0]} rows (first: "
            f"row {rows[0]}): the inputs or the weights are beyond the range where this model's "
            "predictions are defined (even in float64)")
    return Z


def _check_two_classes(classes) -> None:
    classes = to_numpy(classes)
    if len(classes) < 2:
        raise ValueError(
            "This solver needs samples of at least 2 classes in the data, but the data "
            f"contains only one class: {classes[0]!r}"
        )


def _check_weighted_classes(classes, class_totals) -> None:
    """At least two classes keep rows of positive weight once weighted."""
    if np.count_nonzero(class_totals) < 2:
        raise ValueError(
            "The data must hold rows of at least 2 classes with a positive sample_weight; "
            f"only class {classes[class_totals > 0].tolist()} has any weight"
        )


def _drop_unweighted(X, y, sw):
    """The rows of weight > 0: a row of weight 0 is a row absent (scikit-learn's meaning), and a
    minibatch or row block made only of such rows would have no loss to average."""
    if sw is None or np.all(sw > 0):
        return X, y, sw
    keep = np.flatnonzero(sw > 0)
    return _take_rows(X, keep), y[keep], sw[keep]


def _take_rows(X, rows: np.ndarray):
    """X[rows] for host row indices, wherever X is."""
    if sp.issparse(X) or isinstance(X, np.ndarray):
        return X[rows]
    return namespace(X).take(X, asarray(rows, X, np.int64), axis=0)


def _largest_column_rms(X) -> float:
    """max_j √(mean_i x_ij²): 1 or less for standardised or [0, 1] features, ~1e3 for wine's
    proline (max |x| alone also flags a standardised rare pixel)."""
    if X.shape[0] == 0:
        return 0.0
    if sp.issparse(X):
        return float(np.sqrt(X.multiply(X).mean(axis=0).max()))
    xp = namespace(X)  # on X's device: nothing the size of X crosses to the host
    return float(xp.max(xp.mean(X * X, axis=0))) ** 0.5


def _as_network_input(X, dtype, rows_sliced: bool):
    """X in the network's dtype, converted once (not at every step); sparse stays sparse.

    Minibatch training slices rows, which CSR does without a copy and CSC does not.
    """
    if sp.issparse(X):
        X = X.tocsr() if rows_sliced and X.format != "csr" else X
        return X.astype(dtype, copy=False)
    return asarray(X, X, dtype)


def _float_dtypes(X) -> list:
    """float64 and float32 of X's namespace (validate_data keeps X in the first it matches)."""
    xp = namespace(X) if get_config()["array_api_dispatch"] else np
    return [xp.float64, xp.float32]


def _validate_xy(estimator, X, y, reset: bool):
    """scikit-learn's validation of (X, y), X keeping its namespace under array-API dispatch."""
    X, y = validate_data(estimator, X, y, accept_sparse=_ACCEPT_SPARSE, dtype=_float_dtypes(X),
                         reset=reset)
    check_classification_targets(y)
    return X, y


def _sample_weight(sample_weight, X) -> np.ndarray:
    """The validated weights of the rows, on the host in float64 (they are few, as labels)."""
    if isinstance(X, np.ndarray) or sp.issparse(X):
        return _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    if sample_weight is None:
        return np.ones(X.shape[0])
    sw = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
    return np.asarray(to_numpy(sw), dtype=np.float64)


def _iterations(n_iter) -> int:
    return int(np.ravel(to_numpy(n_iter))[0]) if not isinstance(n_iter, int) else n_iter


@model_kind
class SoftmaxRegression(_SoftmaxBase):
    """Multinomial logistic (softmax) regression: one layer, K softmax units.

    Minimises scikit-learn ``LogisticRegression``'s objective, with ρ = ``l1_ratio``,

        C · Σ_i s_i CE_i + (1 − ρ)/2 ‖W‖²_F + ρ ‖W‖₁          (intercepts unpenalised)

    in the equivalent mean form  Σ_i w_i CE_i + ((1 − ρ)/2 ‖W‖² + ρ ‖W‖₁) / (C Σ s),  where
    w_i = s_i / Σ s and s_i = sample_weight_i · class_weight[y_i].  With two classes the output is
    one sigmoid unit: ``coef_`` is (1, d) and ``decision_function`` (n,), as in scikit-learn.

    Parameters follow LogisticRegression: ``C``, ``l1_ratio``, ``fit_intercept``,
    ``class_weight``, ``max_iter`` (iterations of a full-batch solver, or epochs of a minibatch
    one), ``tol``, ``warm_start``, ``random_state`` — but ``tol`` defaults to 1e-5 and
    ``max_iter`` to 200, not 1e-4 and 100: a full-batch fit stops when max_i |∂J/∂θ_i| ≤ tol, and
    1e-4 stops short of the optimum where 1e-5 reaches it (the *Defaults* table of the
    performance page gives the gap each reaches).  ``solver`` is "lbfgs" (full batch, the
    default, smooth objectives only), "fista" (full-batch proximal gradient: any ``l1_ratio``,
    exact zeros in ``coef_``), or "sgd", "adam" (minibatches of ``batch_size`` rows,
    learning rate ``learning_rate_init`` under the schedule ``learning_rate``: "constant", "step"
    or "cosine" over ``max_iter`` epochs); the minibatch solvers also offer ``partial_fit``.
    """

    _solvers = REGRESSION_SOLVERS
    _parameter_constraints = {
        "C": [Interval(Real, 0, None, closed="right")],  # C = inf: no penalty
        "l1_ratio": [Interval(Real, 0, 1, closed="both")],
        "fit_intercept": ["boolean"],
        "solver": [StrOptions(set(REGRESSION_SOLVERS))],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "class_weight": [dict, StrOptions({"balanced"}), None],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions(set(optim.SCHEDULES))],
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
        l1_ratio=0.0,
        fit_intercept=True,
        solver="lbfgs",
        max_iter=200,
        tol=1e-5,
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
        self.l1_ratio = l1_ratio
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

    def _check_solver(self) -> None:
        if self.l1_ratio > 0 and self.solver != "fista":
            raise ValueError(
                f"l1_ratio={self.l1_ratio} needs solver='fista': the L1 term is not "
                f"differentiable at 0, which solver={self.solver!r} cannot handle"
            )

    def _hidden_sizes(self) -> tuple[int, ...]:
        return ()

    def _penalties(self, n: int, weight_sum: float, batch_size: int) -> tuple[float, float]:
        """(l1, l2) = (ρ, 1 − ρ) / (C Σ s): LogisticRegression's penalty in the mean form."""
        scale = 1.0 / (self.C * weight_sum)
        return self.l1_ratio * scale, (1.0 - self.l1_ratio) * scale

    def _init(self, net: Network) -> None:
        net.params[...] = 0  # the problem is convex: start from zero, as scikit-learn does

    def _set_network(self, net: Network) -> None:
        self.network_ = net
        self.coef_ = net.W[0]  # (K, d) or (1, d): views into the flat parameter buffer
        self.intercept_ = net.b[0]

    def _set_n_iter(self, n: int) -> None:
        # LogisticRegression's shape, where the coefficients are
        self.n_iter_ = asarray(np.array([n], dtype=np.int32), self.network_.params)

    _full_batch_solver = staticmethod(solvers.preconditioned_lbfgs)

    def _finish_full_batch(self, net, res) -> None:
        if net.output == "softmax" and self.fit_intercept:
            b = net.b[0]
            b -= net.xp.mean(b)  # softmax is shift invariant: centre the intercepts (in place)
        super()._finish_full_batch(net, res)


@model_kind
class SoftmaxNetwork(_SoftmaxBase):
    """A feed-forward network: ``hidden_layer_sizes``, then K softmax outputs (MLPClassifier's API).

    Objective per minibatch B (as MLPClassifier): Σ_{i∈B} w_i CE_i + α/(2|B| s̄) Σ_l ‖W[l]‖²
    with w_i = s_i / Σ_{j∈B} s_j and s̄ the mean row weight (|B| = ``batch_size``; the whole
    training set for ``solver="lbfgs"``, where the penalty is MLPClassifier's α/(2 Σ s)).
    Parameter names follow ``sklearn.neural_network.MLPClassifier`` wherever they mean the same.
    ``coefs_[l]`` is ``W[l+1]ᵀ`` of shape (d_in, d_out), as in scikit-learn.
    ``solver="adamw"`` adds Adam's decoupled weight decay ``weight_decay`` (None: AdamW's
    usual 0.01) on the weights only.
    """

    _solvers = NETWORK_SOLVERS
    _parameter_constraints = {
        **{k: v for k, v in SoftmaxRegression._parameter_constraints.items()
           if k not in ("C", "l1_ratio", "fit_intercept")},
        "solver": [StrOptions(set(NETWORK_SOLVERS))],
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions(set(ACTIVATIONS))],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "weight_decay": [Interval(Real, 0, None, closed="left"), None],
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
        weight_decay=None,
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

    def _penalties(self, n: int, weight_sum: float, batch_size: int) -> tuple[float, float]:
        """(0, α / (|B| s̄)), s̄ = Σ s / n: MLPClassifier's α / (2 Σ_{i∈B} s_i) on an average batch.

        Full batch (lbfgs) this is α / Σ s, exactly MLPClassifier's; unweighted, α / |B|.
        """
        return 0.0, self.alpha * n / (batch_size * weight_sum)

    def _init(self, net: Network) -> None:
        net.initialize(self._seed)

    def _set_network(self, net: Network) -> None:
        self.network_ = net
        self.coefs_ = [W.T for W in net.W]  # (d_in, d_out) each, scikit-learn's convention
        self.intercepts_ = list(net.b)
        self.n_layers_ = len(net.layer_sizes)
        self.n_outputs_ = net.layer_sizes[-1]
        self.out_activation_ = "logistic" if net.output == "sigmoid" else "softmax"

    def _set_n_iter(self, n: int) -> None:
        self.n_iter_ = int(n)  # MLPClassifier's type
