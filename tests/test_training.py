"""The minibatch loop: reproducibility, history, early stopping, callbacks, divergence and
sparse input."""

import re
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import scipy.special
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.metrics import accuracy_score, log_loss

from softmaxreg.exceptions import TrainingDivergedError
from softmaxreg.network import Network
from softmaxreg.objective import MemoryRows
from softmaxreg.optim import SGD, Adam, constant
from softmaxreg.training import TrainConfig, epoch_permutation, evaluate, train


def blobs(n=150, d=4, K=3, seed=0, spread=0.6):
    """K well separated Gaussian clusters: an easy problem."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(K, d))
    y = rng.integers(0, K, size=n)
    return centres[y] + rng.normal(scale=spread, size=(n, d)), y


def fit(X, y, *, seed=0, epochs=5, lr=0.05, batch_size=16, net_seed=0, sizes=(4, 8, 3),
        optimizer=None, **kwargs):
    net = Network(sizes, activation="tanh").initialize(net_seed)
    opt = (optimizer or SGD(momentum=0.9)).init(net.params)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, seed=seed, progress=False,
                         **{k: v for k, v in kwargs.items() if k in TrainConfig.__annotations__})
    rest = {k: v for k, v in kwargs.items() if k not in TrainConfig.__annotations__}
    history = train(net, opt, constant(lr) if np.isscalar(lr) else lr, X, y, config, **rest)
    return net, history


# -- reproducibility -------------------------------------------------------------------------
def test_same_seed_gives_bit_identical_parameters():
    X, y = blobs()
    a, _ = fit(X, y, seed=3)
    b, _ = fit(X, y, seed=3)
    assert_array_equal(a.params, b.params)


def test_a_different_seed_gives_different_parameters():
    X, y = blobs()
    a, _ = fit(X, y, seed=3)
    b, _ = fit(X, y, seed=4)
    assert not np.allclose(a.params, b.params)


def test_epoch_permutation_depends_only_on_seed_and_epoch():
    p = epoch_permutation(50, seed=1, epoch=3)
    assert_array_equal(np.sort(p), np.arange(50))
    _ = [epoch_permutation(50, s, e) for s in range(3) for e in range(3)]  # other draws between
    assert_array_equal(epoch_permutation(50, seed=1, epoch=3), p)
    assert not np.array_equal(epoch_permutation(50, seed=1, epoch=4), p)
    assert not np.array_equal(epoch_permutation(50, seed=2, epoch=3), p)
    # seed and epoch are not mixed into one number (seed + epoch would make these collide)
    assert not np.array_equal(epoch_permutation(50, 1, 2), epoch_permutation(50, 2, 1))


class RecordingRows(MemoryRows):
    """In-memory rows that record which rows each minibatch step asked for."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.asked = []

    def batch(self, net, rows, l2):
        self.asked.append(np.array(rows))
        return super().batch(net, rows, l2)


def test_every_epoch_visits_every_row_once_in_a_new_order():
    X, y = blobs(n=50)
    rows = RecordingRows(X, y)
    net = Network((4, 8, 3), activation="tanh").initialize(0)
    config = TrainConfig(epochs=4, batch_size=8, seed=0, progress=False, n_iter_no_change=100)
    train(net, SGD(momentum=0.9).init(net.params), constant(0.05), rows, None, config)
    steps = -(-50 // 8)
    assert len(rows.asked) == 4 * steps and all(len(r) <= 8 for r in rows.asked)
    orders = [np.concatenate(rows.asked[e * steps:(e + 1) * steps]) for e in range(4)]
    for order in orders:
        assert_array_equal(np.sort(order), np.arange(50))  # every row once per epoch
    assert not np.array_equal(orders[0], np.arange(50))  # shuffled
    assert all(not np.array_equal(a, b) for i, a in enumerate(orders) for b in orders[i + 1:])


def test_resuming_at_an_epoch_boundary_continues_identically():
    X, y = blobs()
    straight, _ = fit(X, y, epochs=6, n_iter_no_change=100)
    net = Network((4, 8, 3), activation="tanh").initialize(0)
    opt = SGD(momentum=0.9).init(net.params)
    for start, stop in [(0, 2), (2, 6)]:
        config = TrainConfig(epochs=stop, batch_size=16, progress=False, start_epoch=start,
                             n_iter_no_change=100)
        train(net, opt, constant(0.05), X, y, config)
    assert_array_equal(net.params, straight.params)


def test_unit_sample_weights_are_no_weights():
    X, y = blobs()
    a, _ = fit(X, y)
    b, _ = fit(X, y, sample_weight=np.ones(len(y)))
    assert_array_equal(a.params, b.params)


# -- history ---------------------------------------------------------------------------------
def test_history_lengths_and_the_loss_decreases():
    X_all, y_all = blobs(n=260)
    X, y, X_val, y_val = X_all[:200], y_all[:200], X_all[200:], y_all[200:]
    net, h = fit(X, y, epochs=12, validation=(X_val, y_val))
    assert h.n_epochs == 12
    assert len(h.loss) == len(h.accuracy) == len(h.val_loss) == len(h.val_accuracy) == 12
    assert h.loss[-1] < 0.5 * h.loss[0]
    assert h.accuracy[-1] > 0.95 and h.val_accuracy[-1] > 0.95
    # the validation entries are the log-loss and accuracy of the final network
    P = net.predict_proba(X_val)
    assert h.val_loss[-1] == pytest.approx(log_loss(y_val, P, labels=range(3)), rel=1e-10)
    assert h.val_accuracy[-1] == accuracy_score(y_val, P.argmax(axis=1))
    assert set(h.as_dict()) == {"loss", "accuracy", "val_loss", "val_accuracy"}


def test_history_without_validation_has_no_validation_entries():
    X, y = blobs()
    _, h = fit(X, y, epochs=3)
    assert len(h.loss) == 3 and h.val_loss == [] and h.val_accuracy == []


def test_epoch_loss_is_the_cross_entropy_before_each_step_without_the_penalty():
    """One full batch per epoch: the logged loss is the CE at the parameters the step started
    from, whatever the penalty."""
    X, y = blobs(n=40)
    net = Network((4, 5, 3), activation="tanh").initialize(1)
    seen = [net.params.copy()]
    config = TrainConfig(epochs=3, batch_size=40, l2=0.5, progress=False)
    h = train(net, SGD(momentum=0.0).init(net.params), constant(0.5), X, y, config,
              callbacks=[lambda epoch, logs: seen.append(net.params.copy())])
    probe = Network((4, 5, 3), activation="tanh")
    for epoch in range(3):
        probe.params[...] = seen[epoch]
        P = probe.predict_proba(X)
        assert h.loss[epoch] == pytest.approx(log_loss(y, P, labels=range(3)), rel=1e-12)
        assert h.accuracy[epoch] == accuracy_score(y, P.argmax(axis=1))


def test_epoch_loss_with_sample_weights_is_the_weighted_mean():
    X, y = blobs(n=60)
    s = np.random.default_rng(2).uniform(0.1, 3.0, size=60)
    net = Network((4, 5, 3), activation="tanh").initialize(1)
    P = net.predict_proba(X)
    config = TrainConfig(epochs=1, batch_size=7, progress=False)  # uneven batches
    h = train(net, SGD(momentum=0.0).init(net.params), constant(0.0), X, y, config,
              sample_weight=s)  # lr = 0: the parameters stay where P was computed
    assert h.loss[0] == pytest.approx(log_loss(y, P, sample_weight=s, labels=range(3)), rel=1e-12)


def test_evaluate_matches_log_loss_and_accuracy():
    X, y = blobs(n=50)
    s = np.random.default_rng(0).uniform(0.1, 2.0, size=50)
    net = Network((4, 6, 3), activation="relu").initialize(5)
    P = net.predict_proba(X)
    loss, acc = evaluate(net, X, y, s)
    assert loss == pytest.approx(log_loss(y, P, sample_weight=s, labels=range(3)), rel=1e-12)
    assert acc == accuracy_score(y, P.argmax(axis=1))


# -- early stopping and callbacks ------------------------------------------------------------
def test_early_stopping_stops_and_restores_the_best_validation_parameters():
    X, y = blobs(n=200)
    # validation labels shifted by one: the better the model fits, the worse the validation loss
    X_val, y_val = X[:60], (y[:60] + 1) % 3
    snapshots, val_losses = [], []

    net = Network((4, 8, 3), activation="tanh").initialize(0)

    def record(epoch, logs):
        snapshots.append(net.params.copy())
        val_losses.append(logs["val_loss"])

    config = TrainConfig(epochs=50, batch_size=16, progress=False, early_stopping=True,
                         n_iter_no_change=3, tol=0.0)
    h = train(net, SGD(momentum=0.9).init(net.params), constant(0.05), X, y, config,
              validation=(X_val, y_val), callbacks=[record])
    best = int(np.argmin(val_losses))
    assert h.n_epochs == len(val_losses) == best + 1 + 3 < 50
    assert_array_equal(net.params, snapshots[best])
    assert not np.array_equal(net.params, snapshots[-1])
    assert evaluate(net, X_val, y_val)[0] == pytest.approx(min(val_losses), rel=1e-12)


def test_without_early_stopping_a_stalled_loss_still_ends_training():
    X, y = blobs()
    _, h = fit(X, y, epochs=40, lr=0.0, n_iter_no_change=4)  # lr 0: the loss never improves
    assert h.n_epochs == 5


def test_a_callback_returning_true_stops_training():
    X, y = blobs()
    calls = []

    def stop_after_third(epoch, logs):
        calls.append((epoch, logs["epoch"]))
        return epoch == 2

    _, h = fit(X, y, epochs=20, callbacks=[stop_after_third])
    assert h.n_epochs == 3
    assert calls == [(0, 1), (1, 2), (2, 3)]


# -- divergence ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "dtype, sizes, activation, lr, batch_size",
    [
        (np.float64, (4, 16, 16, 3), "identity", 1e8, 16),  # logits overflow mid-epoch
        (np.float64, (4, 16, 16, 3), "leaky_relu", 1e3, 150),  # one batch per epoch
        (np.float32, (4, 3), "identity", 1e300, 150),  # the step itself overflows to inf
    ],
)
def test_a_huge_learning_rate_raises_and_keeps_the_last_finite_epoch(dtype, sizes, activation,
                                                                      lr, batch_size):
    X, y = blobs()
    net = Network(sizes, activation=activation, dtype=dtype).initialize(0)
    starts = [net.params.copy()]  # the parameters at the start of each epoch
    config = TrainConfig(epochs=100, batch_size=batch_size, progress=False)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(TrainingDivergedError) as info:
            train(net, SGD(momentum=0.9).init(net.params), constant(lr), X, y, config,
                  callbacks=[lambda epoch, logs: starts.append(net.params.copy())])
    message = str(info.value)
    epoch = int(re.search(r"epoch (\d+)", message).group(1))
    assert epoch == len(starts)  # the epoch that failed, counted from 1
    assert "smaller learning rate" in message
    assert np.all(np.isfinite(net.params))
    assert_array_equal(net.params, starts[epoch - 1])
    assert isinstance(info.value, FloatingPointError)


# -- sparse input ----------------------------------------------------------------------------
def test_sparse_input_trains_like_dense():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(120, 6)) * (rng.random((120, 6)) < 0.4)
    y = np.argmax(X @ rng.normal(size=(6, 3)), axis=1)
    dense, hd = fit(X, y, sizes=(6, 5, 3), epochs=4)
    sparse, hs = fit(sp.csr_matrix(X), y, sizes=(6, 5, 3), epochs=4)
    assert_allclose(sparse.params, dense.params, rtol=1e-10, atol=1e-12)
    assert_allclose(hs.loss, hd.loss, rtol=1e-10)
    assert hs.loss[-1] < hs.loss[0]


def test_adam_on_a_softmax_regression_reaches_a_good_fit():
    X, y = blobs(n=200, spread=0.8)
    net, h = fit(X, y, sizes=(4, 3), optimizer=Adam(), lr=0.05, epochs=30)
    P = scipy.special.softmax(X @ net.W[0].T + net.b[0], axis=1)
    assert accuracy_score(y, P.argmax(axis=1)) > 0.95
    assert h.loss[-1] < 0.2
