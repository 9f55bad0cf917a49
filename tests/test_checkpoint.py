"""Checkpoints: interrupt a run with a real signal, resume it, and end bit-identical to a run that
was never interrupted; refuse checkpoints of another run; never overwrite one by accident.

The end-to-end test starts real ``softmaxreg train`` processes and signals them.  Each process
runs with one BLAS/OpenMP thread (OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS=1), so
that the runs compared are deterministic whatever BLAS threading would do with reductions.
"""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from numpy.testing import assert_array_equal
from sklearn.datasets import load_digits

from softmaxreg import ModelFileError, SoftmaxNetwork, SoftmaxRegression
from softmaxreg.checkpoint import Checkpointer, TrainingInterrupted, load_checkpoint
from softmaxreg.network import Network
from softmaxreg.optim import Adam, constant
from softmaxreg.training import TrainConfig, train
from softmaxreg.workflow import TrainSettings, resume_settings
from softmaxreg.workflow import train as workflow_train

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:600] / 16.0, y[:600]


class SignalAt(Checkpointer):
    """A checkpointer that sends this process a real ``signum`` after global step ``at``."""

    def __init__(self, *args, at: int, signum=signal.SIGTERM, **kwargs):
        super().__init__(*args, **kwargs)
        self.at, self.signum, self.steps = at, signum, 0

    def after_step(self, run):
        self.steps += 1
        if self.steps == self.at:
            signal.raise_signal(self.signum)  # the handler runs before the next line
        super().after_step(run)


def network(solver="sgd", **kwargs):
    settings = dict(hidden_layer_sizes=(16,), solver=solver, max_iter=6, batch_size=64,
                    learning_rate_init=0.05 if solver == "sgd" else 0.01, random_state=0)
    return SoftmaxNetwork(**{**settings, **kwargs})


def assert_same_fit(a, b):
    assert_array_equal(a.network_.params, b.network_.params)
    assert a.history_.as_dict() == b.history_.as_dict()
    assert a.n_iter_ == b.n_iter_


# -- in process: a real signal at a chosen step ---------------------------------------------------
@pytest.mark.parametrize("solver, kwargs, at, steps", [
    ("sgd", {}, 23, 10),  # mid-epoch (600 rows: 10 steps per epoch)
    ("adam", {}, 30, 10),  # right at an epoch boundary
    ("adamw", {"weight_decay": 0.01}, 1, 10),  # after the very first step
    # 540 rows (10% held out): the best parameters so far are part of the checkpoint
    ("adam", {"early_stopping": True, "n_iter_no_change": 2, "max_iter": 30}, 41, 9),
])
def test_interrupted_and_resumed_fit_is_bit_identical(digits, tmp_path, solver, kwargs, at,
                                                     steps):
    X, y = digits
    straight = network(solver, **kwargs).fit(X, y)
    path = tmp_path / "run.ckpt"
    settings = {"estimator": network(solver, **kwargs).get_params()}
    with pytest.raises(TrainingInterrupted, match="interrupted by SIGTERM") as err:
        with SignalAt(path, settings=settings, at=at):
            network(solver, **kwargs).fit(X, y)
    assert err.value.signum == signal.SIGTERM and err.value.path == path
    pos = load_checkpoint(path).meta["position"]
    assert pos["epoch"] * steps + pos["step"] == at  # the step in progress finished, no more
    resumed = network(solver, **kwargs)
    with Checkpointer(path, resume=path, settings=settings):
        resumed.fit(X, y)
    assert_same_fit(resumed, straight)
    assert load_checkpoint(path).meta["history"] == straight.history_.as_dict()


def test_interrupted_twice_and_sigint(digits, tmp_path):
    X, y = digits
    straight = network().fit(X, y)
    path = tmp_path / "run.ckpt"
    for at, resume in ((7, None), (18, path)):
        with pytest.raises(TrainingInterrupted, match="SIGINT"):
            with SignalAt(path, resume=resume, at=at, signum=signal.SIGINT):
                network().fit(X, y)
    resumed = network()
    with Checkpointer(path, resume=path):
        resumed.fit(X, y)
    assert_same_fit(resumed, straight)


def test_signal_handlers_are_restored(digits, tmp_path):
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted):
        with SignalAt(tmp_path / "a.ckpt", at=3):
            network().fit(*digits)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_a_second_signal_stops_at_once_and_keeps_the_last_checkpoint(digits, tmp_path):
    X, y = digits
    path = tmp_path / "run.ckpt"

    class Twice(Checkpointer):
        def write(self, run):
            super().write(run)
            if self._signum is not None:  # the last checkpoint is written: now press again
                signal.raise_signal(signal.SIGINT)

    class Once(Twice, SignalAt):
        pass

    with pytest.raises(KeyboardInterrupt, match="again"):
        with Once(path, at=12, signum=signal.SIGINT):
            network().fit(X, y)
    assert load_checkpoint(path).meta["position"]["step"] == 2


def test_low_level_train_with_hooks_resumes_mid_epoch(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(90, 4)), rng.integers(0, 3, 90)
    config = TrainConfig(epochs=5, batch_size=16, seed=3, progress=False, l2=1e-3)

    def fresh():
        net = Network((4, 8, 3), activation="tanh").initialize(0)
        return net, Adam().init(net.params)

    net, opt = fresh()
    history = train(net, opt, constant(0.01), X, y, config)
    path = tmp_path / "low.ckpt"
    net2, opt2 = fresh()
    with pytest.raises(TrainingInterrupted):
        with SignalAt(path, every=0, at=15) as hooks:
            train(net2, opt2, constant(0.01), X, y, config, hooks=hooks)
    net3, opt3 = fresh()
    with Checkpointer(path, resume=path) as hooks:
        history3 = train(net3, opt3, constant(0.01), X, y, config, hooks=hooks)
    assert_array_equal(net3.params, net.params)
    assert_array_equal(opt3.m, opt.m)
    assert opt3.t == opt.t == 30  # 5 epochs of 6 steps
    assert history3.as_dict() == history.as_dict()


# -- refusing what does not fit ----------------------------------------------------------------
@pytest.fixture
def saved_run(digits, tmp_path):
    path = tmp_path / "run.ckpt"
    with pytest.raises(TrainingInterrupted):
        with SignalAt(path, at=15, settings={"estimator": network().get_params()}):
            network().fit(*digits)
    return path


@pytest.mark.parametrize("change, message", [
    ({"random_state": 1}, "config differs .*seed"),
    ({"batch_size": 32}, "config differs .*batch_size"),
    ({"hidden_layer_sizes": (8,)}, "network differs .*layer_sizes"),
    ({"solver": "adam"}, "optimizer differs .*class"),
    ({"momentum": 0.5}, "optimizer differs .*momentum"),
    ({"dtype": "float64"}, "network differs .*dtype"),
])
def test_resume_refuses_another_run(digits, saved_run, change, message):
    with pytest.raises(ModelFileError, match=message):
        with Checkpointer(saved_run, resume=saved_run):
            network().set_params(**change).fit(*digits)


def test_resume_refuses_other_data_and_other_settings(digits, saved_run):
    X, y = digits
    X = X.copy()
    X[0, 0] += 1e-9
    with pytest.raises(ModelFileError, match="other training data"):
        with Checkpointer(saved_run, resume=saved_run):
            network().fit(X, y)
    with pytest.raises(ModelFileError, match="other settings .*max_iter"):
        Checkpointer(saved_run, resume=saved_run,
                     settings={"estimator": network().set_params(max_iter=7).get_params()})


def test_an_existing_checkpoint_is_never_overwritten_without_resume(saved_run, tmp_path):
    before = saved_run.read_bytes()
    with pytest.raises(FileExistsError, match="already exists.*--resume"):
        Checkpointer(saved_run)
    other = tmp_path / "other.ckpt"
    other.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        Checkpointer(other, resume=saved_run)
    assert saved_run.read_bytes() == before and other.read_bytes() == b"precious"


@pytest.mark.parametrize("mangle", [
    lambda b: b[: len(b) // 2],
    lambda b: b"",
    lambda b: b"PK\x03\x04" + b"\x00" * 100,
])
def test_damaged_checkpoint_is_one_model_file_error(saved_run, mangle):
    saved_run.write_bytes(mangle(saved_run.read_bytes()))
    with pytest.raises(ModelFileError, match="checkpoint"):
        Checkpointer(saved_run, resume=saved_run)


def test_a_model_file_is_not_a_checkpoint(digits, tmp_path):
    path = tmp_path / "model.npz"
    SoftmaxRegression().fit(*digits).save(path)
    with pytest.raises(ModelFileError, match="not a softmaxreg checkpoint"):
        load_checkpoint(path)


def test_full_batch_solvers_have_no_checkpoints(tmp_path):
    with pytest.raises(ValueError, match="minibatch solver"):
        workflow_train(TrainSettings(progress=False), checkpoint=tmp_path / "c.ckpt")


def test_checkpoint_every_n_epochs(digits, tmp_path):
    writes = []

    class Counting(Checkpointer):
        def write(self, run):
            writes.append(run.position.epoch)
            super().write(run)

    with Counting(tmp_path / "c.ckpt", every=4):
        network(max_iter=10).fit(*digits)
    assert writes == [0, 4, 8, 10]


# -- the command line: real processes, real signals ------------------------------------------------
TRAIN = ["train", "--model", "network", "--hidden", "64", "--solver", "sgd", "--batch-size", "8",
         "--epochs", "60", "--quiet"]


def softmaxreg(*args, **kwargs):
    env = {**os.environ, **ONE_THREAD}
    return subprocess.Popen([sys.executable, "-m", "softmaxreg", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def wait_for_epoch(proc, path, epoch: int, timeout: float = 60.0) -> None:
    """Until the checkpoint at ``path`` records ``epoch`` finished epochs (atomic renames: a
    complete old or new file is read, never a partial one)."""
    stop = time.monotonic() + timeout
    while time.monotonic() < stop:
        assert proc.poll() is None, proc.communicate()
        if path.exists() and load_checkpoint(path).meta["position"]["epoch"] >= epoch:
            return
        time.sleep(0.01)
    raise AssertionError("the training process wrote no checkpoint in time")


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("straight") / "model.npz"
    proc = softmaxreg(*TRAIN, "--out", str(out))
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    return out


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_cli_interrupted_by_a_real_signal_resumes_bit_identically(uninterrupted, tmp_path,
                                                                  signum):
    ckpt, out = tmp_path / "run.ckpt", tmp_path / "model.npz"
    proc = softmaxreg(*TRAIN, "--checkpoint", str(ckpt), "--out", str(out))
    wait_for_epoch(proc, ckpt, 2)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    name = signal.Signals(signum).name
    assert proc.returncode == 128 + signum, stderr
    assert f"interrupted by {name}" in stderr and f"--resume {ckpt}" in stderr
    assert "Traceback" not in stderr and not out.exists()
    pos = load_checkpoint(ckpt).meta["position"]
    assert 2 <= pos["epoch"] < 60, pos

    proc = softmaxreg("train", "--resume", str(ckpt), "--out", str(out), "--quiet")
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr
    a, b = np.load(uninterrupted), np.load(out)
    assert_array_equal(a["params"], b["params"])
    assert a["params"].dtype == np.float32
    history = json.loads(str(b["metadata"]))["history"]
    assert history == json.loads(str(a["metadata"]))["history"]
    assert pos["epoch"] < len(history["loss"]) <= 60  # (the loss may stall before 60 epochs)


def test_cli_resume_keeps_the_runs_settings(tmp_path, capsys):
    from softmaxreg.cli import main

    ckpt = tmp_path / "run.ckpt"
    args = ["train", "--model", "network", "--hidden", "8", "--solver", "adam", "--epochs", "2",
            "--quiet", "--checkpoint", str(ckpt)]
    assert main(args) == 0
    settings = resume_settings(ckpt, progress=False)
    assert settings.hidden == (8,) and settings.epochs == 2 and settings.solver == "adam"
    assert main(["train", "--resume", str(ckpt), "--epochs", "3"]) == 1
    assert "drop --epochs" in capsys.readouterr().err
    assert main(args) == 1  # the same command again would overwrite the checkpoint
    assert "already exists" in capsys.readouterr().err
    assert main(["train", "--resume", str(ckpt), "--quiet"]) == 0  # a finished run: nothing to do
