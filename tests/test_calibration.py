"""scikit-learn's CalibratedClassifierCV wraps both estimators like any classifier."""

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from softmaxreg import SoftmaxNetwork, SoftmaxRegression


@pytest.fixture(scope="module", params=[2, 3], ids=["K=2", "K=3"])
def data(request):
    X, y = make_classification(400, 6, n_informative=4, n_redundant=0,
                               n_classes=request.param, random_state=0)
    return X, np.array(["no", "yes", "maybe"])[y]


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_softmax_regression_calibrates_as_logistic_regression(data, method):
    X, y = data
    ours = CalibratedClassifierCV(SoftmaxRegression(C=1.0, tol=1e-8, max_iter=500),
                                  method=method, cv=3).fit(X, y)
    theirs = CalibratedClassifierCV(LogisticRegression(C=1.0, tol=1e-10, max_iter=2000),
                                    method=method, cv=3).fit(X, y)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    P = ours.predict_proba(X)
    np.testing.assert_allclose(P.sum(axis=1), 1, atol=1e-12)
    # the same objective on the same folds: the calibrated probabilities agree
    np.testing.assert_allclose(P, theirs.predict_proba(X), atol=1e-4)
    np.testing.assert_array_equal(ours.predict(X), ours.classes_[P.argmax(axis=1)])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_softmax_network_is_calibrated(data):
    X, y = data
    model = CalibratedClassifierCV(
        SoftmaxNetwork((8,), solver="lbfgs", max_iter=200, random_state=0), cv=3).fit(X, y)
    P = model.predict_proba(X)
    assert P.shape == (len(y), len(np.unique(y)))
    np.testing.assert_allclose(P.sum(axis=1), 1, atol=1e-12)
    assert (model.predict(X) == y).mean() > 0.8
