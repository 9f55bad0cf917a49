"""Standard errors on a large problem: softmaxreg (fit + inference) against statsmodels' MNLogit.

    python benchmarks/inference.py                      # 1,000,000 rows × 50 features × 5 classes
    python benchmarks/inference.py --rows 100000 --no-statsmodels
    python benchmarks/inference.py --threads 1          # both libraries on one BLAS thread

The data are drawn from a softmax model with known coefficients, so the MLE exists and is
well conditioned.  We fit ``SoftmaxRegression(C=np.inf)`` with a tight ``tol`` (the optimum is
what the covariance describes), then call ``softmaxreg.inference``; statsmodels fits
``MNLogit(y, add_constant(X))`` by Newton's method.  Each is timed once (wall clock), and the
largest relative differences between the two results are printed.  ``--threads`` limits the
BLAS threads of both alike (on a machine shared with other work, one thread avoids threads that
spin while waiting for a descheduled partner).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import softmaxreg
from softmaxreg import SoftmaxRegression


def make_data(n: int, d: int, K: int, seed: int = 0):
    """X ~ N(0, I) (n, d); y drawn from softmax(X B + b) with B ~ N(0, 0.3²)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    B, b = 0.3 * rng.standard_normal((d, K)), rng.standard_normal(K) * 0.5
    Z = X @ B + b
    P = np.exp(Z - Z.max(axis=1, keepdims=True))
    P /= P.sum(axis=1, keepdims=True)
    y = (P.cumsum(axis=1) < rng.random((n, 1))).sum(axis=1)
    return X, y


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--features", type=int, default=50)
    parser.add_argument("--classes", type=int, default=5)
    parser.add_argument("--tol", type=float, default=1e-10)
    parser.add_argument("--no-statsmodels", action="store_true")
    parser.add_argument("--threads", type=int, help="BLAS threads (default: the library's)")
    args = parser.parse_args()
    with threadpool_limits(args.threads, user_api="blas"):
        run(args)


def run(args) -> None:
    X, y = make_data(args.rows, args.features, args.classes)
    threads = {i["internal_api"]: i["num_threads"] for i in threadpool_info()}
    print(f"{args.rows} rows × {args.features} features × {args.classes} classes; "
          f"BLAS threads {threads}")

    model = SoftmaxRegression(C=np.inf, tol=args.tol, max_iter=1000, dtype="float64")
    _, fit_s = timed(lambda: model.fit(X, y))
    ours, inference_s = timed(lambda: softmaxreg.inference(model, X, y))
    print(f"softmaxreg: fit {fit_s:.2f} s ({model.n_iter_[0]} L-BFGS iterations) + "
          f"inference {inference_s:.2f} s = {fit_s + inference_s:.2f} s")
    if args.no_statsmodels:
        return
    import statsmodels.api as sm

    theirs, sm_s = timed(lambda: sm.MNLogit(y, sm.add_constant(X)).fit(method="newton",
                                                                         maxiter=100, disp=0))
    print(f"statsmodels MNLogit (Newton, {theirs.mle_retvals['iterations']} iterations): "
          f"{sm_s:.2f} s")
    for name in ("params", "bse", "pvalues"):
        a, b = getattr(ours, name), getattr(theirs, name)
        both_zero = (a == 0) & (b == 0)  # p-values below 1e-308 underflow in both
        rel = np.abs(a - b)[~both_zero] / np.abs(b)[~both_zero]
        print(f"  max relative difference in {name}: {rel.max():.2e} "
              f"({np.count_nonzero(both_zero)} entries 0 in both)")


if __name__ == "__main__":
    main()
