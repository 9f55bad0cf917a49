"""Statistical inference for softmax regression: standard errors, z statistics, p-values.

The layout is statsmodels' ``MNLogit``: class 0 (the first of ``classes_``) is the reference,
and the parameters are the differences β_k = w_k − w_0 of the softmax weights (with the
intercept as a first row), an array of shape (p, K − 1), p = d + 1 (d without an intercept):

    η_ik = x̃_iᵀ β_k  (k = 1..K−1),  η_i0 = 0,  p_ik = softmax(η_i)_k,  x̃_i = (1, x_i)

With two classes the model's single sigmoid unit is already β_1.  Sample weights s_i are
frequency weights (a row of weight 3 counts as three rows): the log-likelihood is

    ℓ(β) = Σ_i s_i log p_{i y_i}

and the observed information (the Hessian of −ℓ), of shape ((K−1)p, (K−1)p), class-major
(entry [k p + j] is the j-th coefficient of class k + 1, as ``MNLogit.cov_params``), is

    I = Σ_i s_i (diag(p̃_i) − p̃_i p̃_iᵀ) ⊗ x̃_i x̃_iᵀ,    p̃_i = (p_i1, …, p_i,K−1),

block (j, k) = Σ_i s_i p_ij (δ_jk − p_ik) x̃_i x̃_iᵀ; for K = 2 it is the logistic
Σ_i s_i p_i (1 − p_i) x̃_i x̃_iᵀ.  It is summed over row blocks, so memory stays bounded.

Covariance: for an unpenalised fit (``C=np.inf``) the inverse information I⁻¹, as statsmodels
(the estimates are maximum-likelihood estimates).  A penalised fit (finite C) minimised
−ℓ(β) + ½ βᵀ R β with R from the L2 penalty ‖W‖²/(2C) (intercepts unpenalised); its covariance
is the sandwich H⁻¹ I H⁻¹ with H = I + R, the large-sample covariance of the ridge estimate at
fixed C (le Cessie & van Houwelingen, 1992).  It ignores the bias the penalty introduces, so
z statistics and p-values of penalised estimates are approximate
(:class:`PenalizedInferenceWarning`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import scipy.sparse as sp
from numpy.typing import NDArray
from scipy import linalg, optimize, stats

from .exceptions import SoftmaxRegError

__all__ = ["inference", "InferenceResult", "InferenceError", "SeparationError",
           "InferenceWarning", "PenalizedInferenceWarning"]

Array = NDArray[np.float64]

_BLOCK_ENTRIES = 2**20  # entries of the largest temporary of a row block: 8 MiB of float64
_SINGULAR = 1e-11  # smallest eigenvalue / largest of the scaled information: singular below
_OFF_OPTIMUM = 0.01  # warn when θ is this many standard errors from the optimum
_SUSPECT = 1e-3  # γ below which quasi-complete separation is tested for (see _smallest_curvature)
_LP_ENTRIES = 2 * 10**7  # largest margin matrix (entries) the separation LP is built for


class InferenceError(SoftmaxRegError, ValueError):
    """The covariance of the estimates does not exist or cannot be computed from these data."""


class SeparationError(InferenceError):
    """The classes are (quasi-)completely separated: the maximum-likelihood estimate does not
    exist, so neither do its standard errors."""


class InferenceWarning(UserWarning):
    """Standard errors and p-values that should not be taken at face value."""


class PenalizedInferenceWarning(InferenceWarning):
    """Standard errors and p-values of a penalised fit are approximate."""


@dataclass(frozen=True)
class InferenceResult:
    """Estimates, standard errors and tests in statsmodels' ``MNLogit`` layout.

    Arrays are (p, K − 1): rows ``xnames`` (``"const"`` first with an intercept), columns the
    non-reference classes ``classes[1:]``; ``classes[0]`` is the reference.
    """

    params: Array
    bse: Array
    covariance: Array = field(repr=False)
    classes: NDArray[Any]
    xnames: list[str]
    nobs: float
    df_model: float  # (K − 1) × the number of regressors other than the constant
    llf: float
    llnull: float
    penalized: bool
    cov_type: str

    @property
    def tvalues(self) -> Array:
        """z = β̂ / se(β̂), (p, K − 1)."""
        return self.params / self.bse

    @property
    def pvalues(self) -> Array:
        """Two-sided p-values of z under N(0, 1), (p, K − 1)."""
        return 2 * stats.norm.sf(np.abs(self.tvalues))

    def cov_params(self) -> Array:
        """The covariance ((K−1)p, (K−1)p), class-major (entry k·p + j: class k + 1, row j)."""
        return self.covariance.copy()

    def conf_int(self, alpha: float = 0.05) -> Array:
        """Wald intervals β̂ ± z_{1−α/2} se, shape (K − 1, p, 2) as ``MNLogit.conf_int``."""
        q = stats.norm.ppf(1 - alpha / 2)
        low, high = self.params - q * self.bse, self.params + q * self.bse
        return np.stack([low.T, high.T], axis=-1)

    @property
    def df_resid(self) -> float:
        return float(self.nobs - self.params.size)

    @property
    def prsquared(self) -> float:
        """McFadden's pseudo R² = 1 − ℓ / ℓ_null."""
        return 1 - self.llf / self.llnull

    @property
    def llr_pvalue(self) -> float:
        """P(χ²_df_model > 2 (ℓ − ℓ_null)): the likelihood-ratio test against the intercept-only
        model (meaningful for the unpenalised fit only)."""
        return float(stats.chi2.sf(2 * (self.llf - self.llnull), self.df_model))

    def summary(self, alpha: float = 0.05) -> str:
        """A text table in the manner of statsmodels' ``MNLogitResults.summary()``."""
        return _summary(self, alpha)


def inference(model, X, y, sample_weight=None) -> InferenceResult:
    """Standard errors, z statistics and p-values of a fitted :class:`SoftmaxRegression`.

    ``X`` (n, d; dense or sparse), ``y`` (n,) and ``sample_weight`` (n,, frequency weights)
    must be the data the model was fitted on — after any scaling, as the model saw them.
    The model must be fitted to its optimum (a small ``tol``): the reported covariance is
    that of the optimum, and a :class:`~sklearn.exceptions.ConvergenceWarning` says when the
    parameters are more than 0.01 standard errors from it.  See the module docstring for the
    covariance of unpenalised (``C=np.inf``) and penalised fits.

    >>> model = SoftmaxRegression(C=np.inf, tol=1e-8).fit(X, y)    # doctest: +SKIP
    >>> result = softmaxreg.inference(model, X, y)
    >>> result.pvalues                      # (d + 1, K − 1), reference class model.classes_[0]
    >>> print(result.summary())
    """
    beta, penalty = _reference_params(model)  # (p, K−1), R or None
    X, y_enc, s = _check_data(model, X, y, sample_weight)
    _check_classes(model.classes_, y_enc, s)
    sums = _information(X, y_enc, s, beta, model.fit_intercept)
    if penalty is None:
        _check_identified(model, X, y_enc, s, sums)
    H = sums.information if penalty is None else sums.information + penalty
    H_inv = _inverse(H)
    _check_optimum(H_inv, sums.score, beta, penalty)
    if penalty is None:
        cov = H_inv
    else:
        cov = H_inv @ sums.information @ H_inv
        warnings.warn(
            f"the model is penalised (C={model.C:g}): the covariance is the sandwich "
            "H⁻¹ I H⁻¹ of the penalised estimate, which ignores the penalty's bias, so its "
            "standard errors and p-values are approximate. Fit with C=np.inf for the "
            "maximum-likelihood estimate and exact large-sample inference.",
            PenalizedInferenceWarning, stacklevel=2)
    bse = np.sqrt(np.diag(cov)).reshape(beta.shape[::-1]).T
    return InferenceResult(
        params=beta, bse=bse, covariance=cov, classes=np.asarray(model.classes_),
        xnames=_xnames(model), nobs=sums.nobs,
        df_model=float((beta.shape[0] - model.fit_intercept) * beta.shape[1]),
        llf=sums.llf, llnull=_llnull(y_enc, s, beta),
        penalized=penalty is not None,
        cov_type="nonrobust" if penalty is None else "sandwich (penalised)")


# -- the model in the reference parametrisation ----------------------------------------------
def _reference_params(model) -> tuple[Array, Array | None]:
    """β (p, K − 1) with the intercept first, and R ((K−1)p, (K−1)p), the Hessian of the
    penalty ‖W‖²/(2C) in terms of β (None when C = ∞)."""
    from sklearn.utils.validation import check_is_fitted

    from .estimators import SoftmaxRegression

    if not isinstance(model, SoftmaxRegression):
        raise TypeError(f"inference supports a fitted softmaxreg SoftmaxRegression, not a "
                        f"{type(model).__name__}: a network's hidden layers have no "
                        "likelihood-based standard errors of this kind")
    check_is_fitted(model)
    if np.isfinite(model.C) and model.l1_ratio > 0:
        raise ValueError(f"inference needs a smooth objective: l1_ratio={model.l1_ratio} puts "
                         "an L1 penalty (not differentiable at 0) on the weights; use "
                         "l1_ratio=0 or C=np.inf")
    if model.class_weight is not None:
        raise ValueError("inference treats sample weights as frequency weights; a model fitted "
                         "with class_weight does not maximise the likelihood of its data: refit "
                         "with class_weight=None")
    W = np.asarray(model.coef_, dtype=np.float64).T  # (d, K) or (d, 1)
    b = np.asarray(model.intercept_, dtype=np.float64)
    B = np.vstack([b, W]) if model.fit_intercept else W  # (p, K) or (p, 1)
    beta = B if B.shape[1] == 1 else B[:, 1:] - B[:, :1]
    return beta, _penalty_hessian(model.C, B.shape[1], beta.shape[0], model.fit_intercept)


def _penalty_hessian(C: float, n_units: int, p: int, fit_intercept: bool) -> Array | None:
    """R = (1/C) A ⊗ E: E = diag(0, 1, …, 1) leaves the intercept unpenalised; A = 1 for one
    sigmoid unit (½‖w‖²), and for K softmax units A = I − 11ᵀ/K, because the centred weights
    w_k = β_k − β̄ (the penalty's optimum) give Σ_k ‖w_k‖² = Σ_k ‖β_k‖² − ‖Σ_k β_k‖²/K."""
    if not np.isfinite(C):
        return None
    E = np.diag(np.r_[0.0, np.ones(p - 1)] if fit_intercept else np.ones(p))
    K = n_units
    A = np.ones((1, 1)) if K == 1 else np.eye(K - 1) - 1.0 / K
    return np.kron(A, E) / C


def _xnames(model) -> list[str]:
    names = getattr(model, "feature_names_in_", None)
    names = [str(n) for n in names] if names is not None else [
        f"x{j + 1}" for j in range(model.n_features_in_)]
    return ["const", *names] if model.fit_intercept else names


# -- data ---------------------------------------------------------------------------------------
def _check_data(model, X, y, sample_weight):
    """X (dense or CSR), y as indices into classes_ (n,), s (n,) float64."""
    from sklearn.utils.validation import _check_sample_weight, check_array, check_consistent_length

    X = check_array(X, accept_sparse="csr", dtype=[np.float64, np.float32])
    if X.shape[1] != model.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but the model was fitted with "
                         f"{model.n_features_in_}")
    y = np.asarray(y)
    check_consistent_length(X, y)
    classes = model.classes_
    y_enc = np.searchsorted(classes, y)
    known = classes[np.minimum(y_enc, len(classes) - 1)] == y
    if not np.all(known):
        raise ValueError(f"y contains labels {np.unique(y[~known]).tolist()} that are not in "
                         f"the model's classes {classes.tolist()}")
    s = _check_sample_weight(sample_weight, X, dtype=np.float64, ensure_non_negative=True)
    return X, y_enc, s


def _check_classes(classes, y_enc: NDArray[np.intp], s: Array) -> None:
    totals = np.bincount(y_enc, weights=s, minlength=len(classes))
    if np.any(totals == 0):
        missing = classes[totals == 0].tolist()
        raise InferenceError(f"class {missing} has no rows of positive weight in y: its "
                             "coefficients are not identified by these data")


# -- one pass over the rows --------------------------------------------------------------------
@dataclass
class _Sums:
    """What one pass over the rows accumulates.

    ``weighted_grams[:, t, :]`` = X̃ᵀ diag(w_t) X̃ (p, p) for the weights w_t of the t-th pair
    (j ≤ k) of non-reference classes, w = s p_j (δ_jk − p_k), then for w = s (the design's own
    Gram matrix G, used by the diagnoses): one product X̃ᵀ [X̃ ∘ w_1, …] per row block.
    """

    weighted_grams: Array  # (p, m(m+1)/2 + 1, p), m = K − 1
    score: Array  # ∂ℓ/∂β (m p,), class-major
    llf: float = 0.0
    nobs: float = 0.0
    n_misclassified: float = 0.0  # weight of the rows whose logit margin is ≤ 0

    @cached_property  # read once the pass is over
    def information(self) -> Array:
        """I (m p, m p), block (j, k) = Σ_i s_i p_ij (δ_jk − p_ik) x̃_i x̃_iᵀ."""
        p, m = self.weighted_grams.shape[0], self.score.size // self.weighted_grams.shape[0]
        info = np.empty((m * p, m * p))
        for t, (j, k) in enumerate(zip(*np.triu_indices(m))):
            info[j * p:(j + 1) * p, k * p:(k + 1) * p] = self.weighted_grams[:, t, :]
            info[k * p:(k + 1) * p, j * p:(j + 1) * p] = self.weighted_grams[:, t, :].T
        return info

    @property
    def gram(self) -> Array:
        """G = Σ_i s_i x̃_i x̃_iᵀ (p, p)."""
        return self.weighted_grams[:, -1, :]


def _information(X, y_enc, s: Array, beta: Array, intercept: bool) -> _Sums:
    """ℓ, its gradient and the weighted Gram matrices behind I and G, summed over row blocks of
    bounded size: no temporary has n rows."""
    p, m = beta.shape  # m = K − 1
    n_weights = m * (m + 1) // 2 + 1
    sums = _Sums(np.zeros((p, n_weights, p)), np.zeros(m * p))
    for a, Xt in _row_blocks(X, intercept, n_weights * p):
        _add_block(sums, Xt, y_enc[a:a + len(Xt)], s[a:a + len(Xt)], beta)
    return sums


def _row_blocks(X, intercept: bool, width: int):
    """(start, x̃ block as float64 (r, p)) over X, r × width ≤ 2²⁰."""
    rows = max(1, _BLOCK_ENTRIES // width)
    for a in range(0, X.shape[0], rows):
        block = X[a:a + rows]
        yield a, _with_intercept(block.toarray() if sp.issparse(block) else block, intercept)


def _with_intercept(block, intercept: bool) -> Array:
    if not intercept:
        return np.asarray(block, dtype=np.float64)
    Xt = np.empty((block.shape[0], block.shape[1] + 1))
    Xt[:, 0] = 1.0
    Xt[:, 1:] = block
    return Xt


def _add_block(sums: _Sums, Xt: Array, y: NDArray[np.intp], s: Array, beta: Array) -> None:
    """Add one block's ℓ, score and weighted Gram matrices X̃ᵀ diag(w_t) X̃."""
    r, p = Xt.shape
    eta = np.zeros((r, beta.shape[1] + 1))
    eta[:, 1:] = Xt @ beta  # (r, K); η_0 = 0
    log_P = eta - _logsumexp(eta)[:, None]
    P = np.exp(log_P[:, 1:])  # p̃ (r, K − 1)
    rows = np.arange(r)
    sums.llf += float(s @ log_P[rows, y])
    sums.nobs += float(s.sum())
    rival = np.where(np.arange(eta.shape[1]) == y[:, None], -np.inf, eta).max(axis=1)
    sums.n_misclassified += float(s[eta[rows, y] <= rival].sum())
    R = -P
    R[y > 0, y[y > 0] - 1] += 1  # Y − P over the non-reference classes
    sums.score += ((s[:, None] * R).T @ Xt).ravel()  # (K−1, p), class-major
    j, k = np.triu_indices(P.shape[1])
    w = np.empty((r, len(j) + 1))
    w[:, :-1] = s[:, None] * P[:, j] * ((j == k) - P[:, k])  # s p_j (δ_jk − p_k)
    w[:, -1] = s
    weighted = (Xt[:, None, :] * w[:, :, None]).reshape(r, -1)  # [X̃ ∘ w_t]_t (r, T p)
    sums.weighted_grams += (Xt.T @ weighted).reshape(p, -1, p)


def _logsumexp(eta: Array) -> Array:
    top = eta.max(axis=1)
    return top + np.log(np.exp(eta - top[:, None]).sum(axis=1))


# -- is the maximum-likelihood estimate identified? ----------------------------------------------
def _check_identified(model, X, y_enc, s: Array, sums: _Sums) -> None:
    """Raise the error that names why the MLE does not exist: collinear regressors, complete
    separation (the fit classifies every row correctly: a separating hyperplane), or
    quasi-complete separation (found by a linear program when the information is suspiciously
    small along some direction: γ < 1e-3 below)."""
    names = _xnames(model)
    collinear = _null_columns(sums.gram)
    if collinear:
        raise InferenceError(
            f"the regressors are collinear: {', '.join(names[j] for j in collinear)} are "
            "linearly dependent (on the rows of positive weight), so their coefficients are "
            "not identified; drop one of them")
    if sums.n_misclassified == 0:
        raise SeparationError(
            f"complete separation: the fitted coefficients classify all {sums.nobs:g} rows "
            "correctly, so the likelihood keeps growing with them and the maximum-likelihood "
            "estimate does not exist (nor its standard errors). Drop or merge the separating "
            "regressors, or fit with a finite C (penalised, approximate inference).")
    if _smallest_curvature(sums) < _SUSPECT:
        _check_quasi_separation(X, y_enc, s, sums, names, model.fit_intercept)


def _null_columns(G: Array) -> list[int]:
    """Columns in the null space of the symmetric G (empty when G has full rank)."""
    d = np.sqrt(np.diag(G))
    if not np.all(d > 0):
        return [int(j) for j in np.flatnonzero(d == 0)]
    w, V = np.linalg.eigh(G / np.outer(d, d))
    if w[0] > _SINGULAR * w[-1]:
        return []
    null = np.abs(V[:, 0])
    return [int(j) for j in np.flatnonzero(null > 1e-3 * null.max())]


def _smallest_curvature(sums: _Sums) -> float:
    """γ = min_v vᵀ I v / vᵀ (I_{K−1} ⊗ G) v: the information along v per unit of the
    regressors' own spread along v, an average of p(1 − p) over the rows (≤ ¼).  It is tiny
    only if the rows that vary along v are all predicted with near certainty.  Computed as the
    smallest eigenvalue of L⁻¹ I L⁻ᵀ, L L ᵀ = I_{K−1} ⊗ G (G has full rank here)."""
    m = sums.information.shape[0] // sums.gram.shape[0]
    L = np.kron(np.eye(m), np.linalg.cholesky(sums.gram))
    A = linalg.solve_triangular(L, sums.information, lower=True)
    A = linalg.solve_triangular(L, A.T, lower=True)
    return float(np.linalg.eigvalsh((A + A.T) / 2)[0])


def _check_quasi_separation(X, y_enc, s, sums: _Sums, names: list[str], intercept: bool):
    """The linear program of Konis (2007): maximise the total margin Σ_i Σ_{k≠y_i}
    x̃_iᵀ(v_{y_i} − v_k) over −1 ≤ v ≤ 1 (v_0 = 0) subject to every margin ≥ 0.  A positive
    optimum is a direction along which no row's likelihood falls and some rise for ever."""
    keep = np.flatnonzero(s > 0)
    m, p = sums.information.shape[0] // sums.gram.shape[0], sums.gram.shape[0]
    if len(keep) * m * m * p > _LP_ENTRIES:
        warnings.warn(
            "the information matrix is nearly singular along some direction, as under "
            "quasi-complete separation, but the data are too large for the exact test: "
            "check large standard errors before trusting them", InferenceWarning, stacklevel=4)
        return
    unit = np.sqrt(np.diag(sums.gram) / sums.nobs)  # regressors in units of their RMS
    A = _margin_matrix(X[keep], y_enc[keep], intercept, m) / np.tile(unit, m)
    res = optimize.linprog(-A.sum(axis=0), A_ub=-A, b_ub=np.zeros(A.shape[0]), bounds=(-1, 1),
                           method="highs")
    if res.status != 0:
        return
    margins = (A @ res.x).reshape(m, -1)  # (rival t, row i)
    certain = int(np.count_nonzero(margins.min(axis=0) > 1e-6))  # ahead of every rival
    separated = int(np.count_nonzero(margins.max(axis=0) > 1e-6))  # ahead of one at least
    if separated:
        v = np.abs(res.x).reshape(m, p).max(axis=0)
        top = [names[j] for j in np.argsort(-v)[:3] if v[j] > 1e-6]
        raise SeparationError(
            f"quasi-complete separation: a combination of the regressors (mostly "
            f"{', '.join(top)}) puts the observed class of {separated} rows ever further "
            f"ahead of a rival class ({certain} of them ahead of every rival: predicted with "
            "certainty) and never behind one, so the likelihood keeps growing along it and the "
            "maximum-likelihood estimate does not exist. Drop or merge those regressors, or "
            "fit with a finite C (penalised, approximate inference).")


def _margin_matrix(X, y: NDArray[np.intp], intercept: bool, m: int) -> Array:
    """A (m·n, m·p): row (t, i) holds the margin x̃_iᵀ(v_{y_i} − v_k) of row i over its t-th
    rival class k = (y_i + t) mod K as a linear function of v (class-major, v_0 = 0)."""
    Xt = _with_intercept(X.toarray() if sp.issparse(X) else X, intercept)
    eye = np.eye(m + 1)[:, 1:]  # one-hot over the non-reference classes; class 0 is zero
    blocks = [((eye[y] - eye[(y + t) % (m + 1)])[:, :, None] * Xt[:, None, :]).reshape(len(y), -1)
              for t in range(1, m + 1)]
    return np.vstack(blocks)


# -- the covariance -----------------------------------------------------------------------------
def _inverse(H: Array) -> Array:
    """H⁻¹ through the eigen-decomposition of D^{-1/2} H D^{-1/2} (D = diag H), which makes the
    test for singularity independent of the regressors' units."""
    d = np.sqrt(np.diag(H))
    w, V = np.linalg.eigh(H / np.outer(d, d)) if np.all(d > 0) else (np.zeros(1), None)
    if w[0] <= _SINGULAR * w[-1]:
        raise InferenceError(
            f"the information matrix is singular (its smallest eigenvalue is {w[0]:.2g} of "
            "the largest, after scaling): the fitted probabilities of some rows are 0 or 1 to "
            "machine precision, so some coefficients are not identified")
    return (V / w) @ V.T / np.outer(d, d)


def _check_optimum(H_inv: Array, score: Array, beta: Array, penalty: Array | None) -> None:
    """Warn when the Newton step to the optimum, H⁻¹ ∇(−ℓ + ½βᵀRβ), exceeds 1% of a standard
    error: the covariance then describes a point the fit has not reached."""
    from sklearn.exceptions import ConvergenceWarning

    theta = beta.T.ravel()
    gradient = -score if penalty is None else penalty @ theta - score
    steps = np.abs(H_inv @ gradient) / np.sqrt(np.diag(H_inv))
    if steps.max() > _OFF_OPTIMUM:
        warnings.warn(
            f"the model is not at the optimum of its objective: a coefficient is "
            f"{steps.max():.2g} standard errors away from it. Refit with a smaller tol (and a "
            "larger max_iter) before reading standard errors and p-values.",
            ConvergenceWarning, stacklevel=3)


def _llnull(y_enc: NDArray[np.intp], s: Array, beta: Array) -> float:
    """ℓ of the intercept-only model: Σ_k S_k log(S_k / S), S_k the weight of class k."""
    totals = np.bincount(y_enc, weights=s, minlength=beta.shape[1] + 1)
    totals = totals[totals > 0]
    return float(totals @ np.log(totals / totals.sum()))


# -- the text table -----------------------------------------------------------------------------
def _summary(r: InferenceResult, alpha: float) -> str:
    width = 78
    method = "MLE" if not r.penalized else "penalised MLE"
    left = [("Dep. Variable:", "y"), ("Model:", "SoftmaxRegression"), ("Method:", method),
            ("Covariance Type:", r.cov_type), ("Reference class:", str(r.classes[0]))]
    right = [("No. Observations:", f"{r.nobs:g}"), ("Df Residuals:", f"{r.df_resid:g}"),
             ("Df Model:", f"{r.df_model:g}"), ("Pseudo R-squ.:", f"{r.prsquared:.5g}"),
             ("Log-Likelihood:", f"{r.llf:.5g}"), ("LL-Null:", f"{r.llnull:.5g}"),
             ("LLR p-value:", f"{r.llr_pvalue:.4g}")]
    lines = ["Softmax Regression Results".center(width), "=" * width]
    for i in range(max(len(left), len(right))):
        a = left[i] if i < len(left) else ("", "")
        b = right[i] if i < len(right) else ("", "")
        lines.append(f"{a[0]:<17}{a[1]:>21} {b[0]:<20}{b[1]:>18}")
    if r.penalized:
        lines.append("Note: penalised estimates; standard errors and p-values are approximate.")
    lines.append("=" * width)
    ci = r.conf_int(alpha)
    q = [f"[{alpha / 2:g}", f"{1 - alpha / 2:g}]"]
    for k in range(r.params.shape[1]):
        lines.append(f"{'y=' + str(r.classes[k + 1]):>15}{'coef':>10}{'std err':>11}{'z':>11}"
                     f"{'P>|z|':>11}{q[0]:>10}{q[1]:>10}")
        lines.append("-" * width)
        for j, name in enumerate(r.xnames):
            lines.append(f"{name[:15]:<15}{r.params[j, k]:>10.4f}{r.bse[j, k]:>11.3f}"
                         f"{r.tvalues[j, k]:>11.3f}{r.pvalues[j, k]:>11.3f}"
                         f"{ci[k, j, 0]:>10.3f}{ci[k, j, 1]:>10.3f}")
        lines.append(("-" if k < r.params.shape[1] - 1 else "=") * width)
    return "\n".join(lines)
