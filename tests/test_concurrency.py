"""One fitted model, many threads: predictions made concurrently equal the serial ones, and
predicting during training leaves the training untouched.

Inference uses ``Network.logits`` (``forward(keep=False)``), which writes no layer state; BLAS
releases the GIL inside the products, so the threads here really do overlap.
"""

import threading
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits

from softmaxreg import SoftmaxNetwork, SoftmaxRegression

N_THREADS = 8


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def fitted(kind, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind == "softmax":
            return SoftmaxRegression(max_iter=50).fit(X, y)
        if kind == "binary":
            return SoftmaxRegression(max_iter=50).fit(X, y % 2)
        return SoftmaxNetwork((64, 32), max_iter=5, random_state=0).fit(X, y)


def in_threads(work, n=N_THREADS):
    """Run ``work(i)`` in n threads released together; return the results by thread."""
    start, results, errors = threading.Barrier(n), [None] * n, []

    def run(i):
        try:
            start.wait()
            results[i] = work(i)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return results


@pytest.mark.parametrize("kind", ["softmax", "binary", "network"])
@pytest.mark.parametrize("sparse", [False, True])
def test_predict_proba_from_8_threads_equals_serial(digits, kind, sparse):
    X, y = digits
    model = fitted(kind, sp.csr_matrix(X) if sparse else X, y)
    rng = np.random.default_rng(0)
    # every thread its own rows (shuffled, different lengths): cross-talk would show
    inputs = [X[rng.permutation(len(X))[: 1200 + 50 * i]] for i in range(N_THREADS)]
    inputs = [sp.csr_matrix(A) for A in inputs] if sparse else inputs
    serial = [(model.predict_proba(A), model.decision_function(A), model.predict(A))
              for A in inputs]

    def work(i):
        return [(model.predict_proba(inputs[i]), model.decision_function(inputs[i]),
                 model.predict(inputs[i])) for _ in range(5)]

    for i, runs in enumerate(in_threads(work)):
        for P, Z, labels in runs:
            assert_array_equal(P, serial[i][0])
            assert_array_equal(Z, serial[i][1])
            assert_array_equal(labels, serial[i][2])


def test_predicting_during_training_leaves_the_training_unchanged(digits):
    """partial_fit in one thread while seven threads predict with the same model: the fit ends
    bit-identical to the same fit without them (inference never touches the training caches)."""
    X, y = digits
    classes = np.unique(y)

    def model():
        return SoftmaxNetwork((64,), solver="sgd", batch_size=16, random_state=0)

    quiet = model()
    for _ in range(3):
        quiet.partial_fit(X, y, classes=classes)
    busy = model().partial_fit(X, y, classes=classes)
    done = threading.Event()

    def work(i):
        if i == 0:
            try:
                for _ in range(2):
                    busy.partial_fit(X, y)
            finally:
                done.set()
            return None
        calls = 0
        while not done.is_set():
            P = busy.predict_proba(X[i * 100:(i + 1) * 100])
            assert np.all(np.isfinite(P))
            calls += 1
        return calls

    calls = in_threads(work)
    assert_array_equal(busy.network_.params, quiet.network_.params)
    assert sum(calls[1:]) > N_THREADS  # the predictions really ran alongside
