#!/usr/bin/env python
"""Mutation testing of softmaxreg: inject one meaningful bug at a time; a test must fail.

Not part of CI: the whole campaign takes about half an hour on two cores.  Each mutation in
MUTATIONS replaces one exact piece of text of one module (an operator flipped, a constant
changed, a line deleted, a condition negated) and runs the test files that cover the module
(TESTS, or the mutation's own list) with ``pytest -x``.  A mutation is *killed* when they fail or
run past the timeout, *survived* when they pass; the report (default tools/mutation_report.md)
gives each one's outcome and the first failure seen.

Everything runs in a private copy of the repository (a snapshot of HEAD, or with --worktree of
the files of the working tree), with PYTHONPATH pointing at it: the shared tree is never
touched.  The mutated file is restored in a ``finally`` after every run (Ctrl-C included), the
copy is deleted at the end (unless --keep), and no bytecode is written, so a stale .pyc of a
mutated module can never be imported.

    python tools/mutate.py                              # every mutation, then the report
    python tools/mutate.py --list                       # names, files, what each stands for
    python tools/mutate.py --only optim-nesterov-ignored est-alpha-ignored
    python tools/mutate.py --worktree --keep            # uncommitted files too; keep the copy
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REPORT = REPO / "tools" / "mutation_report.md"
TIMEOUT_S = 400  # per mutation; a run past it counts as killed (a hang is a detected bug)
PYTEST = ["-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", "-rfE", "--tb=line",
          "-W", "ignore::DeprecationWarning"]

# The test files that cover each module, fastest and most targeted first (-x stops at the first
# failure, so a killed mutation costs little; a survivor costs the whole list).
TESTS: dict[str, tuple[str, ...]] = {
    "softmaxreg/functional.py": ("tests/test_functional.py", "tests/test_gradcheck.py"),
    "softmaxreg/activations.py": ("tests/test_activations.py", "tests/test_gradcheck.py"),
    "softmaxreg/layers.py": ("tests/test_layers.py", "tests/test_gradcheck.py"),
    "softmaxreg/network.py": ("tests/test_network.py", "tests/test_gradcheck.py"),
    "softmaxreg/gradcheck.py": ("tests/test_gradcheck.py",),
    "softmaxreg/objective.py": ("tests/test_solvers.py", "tests/test_training.py",
                                "tests/test_estimators.py"),
    "softmaxreg/optim.py": ("tests/test_optim.py", "tests/test_estimators.py::"
                            "test_network_sgd_steps_equal_pytorch_sgd"),
    "softmaxreg/solvers.py": ("tests/test_solvers.py", "tests/test_estimators.py"),
    "softmaxreg/training.py": ("tests/test_training.py", "tests/test_checkpoint.py"),
    "softmaxreg/estimators.py": ("tests/test_estimators.py",),
    "softmaxreg/_threads.py": ("tests/test_threads.py",),
    "softmaxreg/workflow.py": ("tests/test_cli.py",),
    "softmaxreg/persistence.py": ("tests/test_persistence.py", "tests/test_cli.py"),
    "softmaxreg/checkpoint.py": ("tests/test_checkpoint.py",),
    "softmaxreg/io/idx.py": ("tests/test_datasets.py", "tests/test_streaming.py"),
    "softmaxreg/io/tabular.py": ("tests/test_datasets.py",),
    "softmaxreg/io/npz.py": ("tests/test_persistence.py", "tests/test_datasets.py"),
}


@dataclass(frozen=True)
class Mutation:
    """Replace ``old`` (which must occur exactly once in ``path``) by ``new``."""

    name: str
    path: str
    old: str
    new: str
    why: str
    tests: tuple[str, ...] = ()

    def test_args(self) -> tuple[str, ...]:
        return self.tests or TESTS[self.path]


M = Mutation
FUNCTIONAL, ACTIVATIONS, LAYERS = ("softmaxreg/functional.py", "softmaxreg/activations.py",
                                   "softmaxreg/layers.py")
NETWORK, OBJECTIVE, OPTIM, SOLVERS = ("softmaxreg/network.py", "softmaxreg/objective.py",
                                      "softmaxreg/optim.py", "softmaxreg/solvers.py")
TRAINING, ESTIMATORS, WORKFLOW = ("softmaxreg/training.py", "softmaxreg/estimators.py",
                                  "softmaxreg/workflow.py")
PERSISTENCE, CHECKPOINT = "softmaxreg/persistence.py", "softmaxreg/checkpoint.py"
THREADS = "softmaxreg/_threads.py"
IDX, TABULAR, NPZ = "softmaxreg/io/idx.py", "softmaxreg/io/tabular.py", "softmaxreg/io/npz.py"

MUTATIONS: list[Mutation] = [
    # -- the bugs of issue 13, point 7, that the suite used to let through --------------------
    M("wf-scaling-ignored", WORKFLOW,
      "return scaling.transform(X) if scaling is not None else X", "return X",
      "evaluate/predict skip the model file's preprocessing (wine: 1.00 -> 0.33)"),
    M("est-alpha-ignored", ESTIMATORS, "return 0.0, self.alpha * n /", "return 0.0, 0.0 * n /",
      "SoftmaxNetwork ignores alpha (no L2 penalty)"),
    M("est-nesterov-ignored", ESTIMATORS, '"nesterov": self.nesterovs_momentum',
      '"nesterov": False', "nesterovs_momentum=True runs classical momentum"),
    M("obj-sparse-densified", OBJECTIVE, "return self.X[rows]\n",
      "return self.X[rows].toarray()\n", "sparse minibatches are made dense"),
    M("train-same-permutation", TRAINING, "epoch_permutation(n, config.seed, epoch)",
      "epoch_permutation(n, config.seed, 0)", "every epoch visits the rows in the same order"),
    M("threads-restored-early", THREADS,
      "if entry[0] == 0:\n                    _set_num_threads(c, entry[1])",
      "if entry[0] <= 1:\n                    _set_num_threads(c, entry[1])",
      "the first of two overlapping BLAS limits to end restores the threads for both"),
    M("threads-control-kept", THREADS,
      'release = getattr(type(controller), "clear_controlling_thread", None)', "release = None",
      "threadpoolctl's controlling thread kept: BLAS limits of other threads are ignored"),
    # -- functional: the math of the notes ------------------------------------------------------
    M("fn-softmax-unshifted", FUNCTIONAL, "E = xp.exp(Z - _row_max(Z, xp))", "E = xp.exp(Z)",
      "softmax without the max shift (overflow for large logits)"),
    M("fn-logsumexp-drops-max", FUNCTIONAL, "return (xp.log(s) + m)[..., 0]",
      "return (xp.log(s))[..., 0]", "logsumexp forgets to add the shift back"),
    M("fn-log-softmax-sign", FUNCTIONAL, "return S - xp.log(xp.sum(xp.exp(S)",
      "return S + xp.log(xp.sum(xp.exp(S)", "log_softmax adds the normaliser"),
    M("fn-ce-grad-plus-one", FUNCTIONAL, "dZ[np.arange(dZ.shape[0]), y] -= 1",
      "dZ[np.arange(dZ.shape[0]), y] += 1", "cross-entropy gradient Ŷ + Y instead of Ŷ − Y"),
    M("fn-sum-not-mean", FUNCTIONAL, "xp.full(n, 1.0 / n,", "xp.full(n, 1.0,",
      "the loss sums over rows instead of averaging"),
    M("fn-sigmoid-branches-swapped", FUNCTIONAL, "xp.where(z >= 0, 1 / (1 + e), e / (1 + e))",
      "xp.where(z >= 0, e / (1 + e), 1 / (1 + e))", "σ(z) returns σ(−z)"),
    M("fn-bce-sign", FUNCTIONAL, "- y * z))", "+ y * z))",
      "binary cross-entropy log(1 + e^z) + y z"),
    M("fn-argmin", FUNCTIONAL, "return xp.argmax(Z, axis=1)", "return xp.argmin(Z, axis=1)",
      "labels from the smallest logit"),
    # -- activations and layers: backpropagation ------------------------------------------------
    M("act-tanh-prime", ACTIVATIONS, "return 1 - A * A", "return 1 - A",
      "tanh' written 1 − A instead of 1 − A²"),
    M("act-sigmoid-prime", ACTIVATIONS, "return A * (1 - A)", "return A * (1 + A)",
      "σ' = A(1 + A)"),
    M("act-leaky-slope", ACTIVATIONS, "LEAKY_SLOPE = 0.01", "LEAKY_SLOPE = 0.1",
      "leaky ReLU with slope 0.1 instead of scikit-learn's/PyTorch's 0.01"),
    M("layer-no-bias", LAYERS, "        Z += self.b\n", "",
      "the forward pass drops the intercepts (a deleted line)"),
    M("layer-derivative-args", LAYERS, "self.activation.derivative(self._Z, self._A)",
      "self.activation.derivative(self._A, self._Z)", "σ' evaluated with Z and A swapped"),
    # -- network ---------------------------------------------------------------------------------
    M("net-penalty-not-halved", NETWORK, "0.5 * l2 * sum(float(np.vdot(W, W))",
      "l2 * sum(float(np.vdot(W, W))",
      "the penalty's value is l2 ‖W‖² while its gradient is l2 W"),
    M("net-fit-intercept-negated", NETWORK, "if not self.fit_intercept:",
      "if self.fit_intercept:", "the output intercepts are frozen when they should be fitted"),
    M("net-penalty-grad-dropped", NETWORK, "layer.dW += l2 * layer.W",
      "layer.dW += 0 * layer.W", "the penalty's gradient is missing"),
    M("net-binary-columns-swapped", NETWORK, "[sigmoid(-z), sigmoid(z)]",
      "[sigmoid(z), sigmoid(-z)]", "binary probabilities in the wrong order"),
    # -- objective -------------------------------------------------------------------------------
    M("obj-intercepts-penalised", OBJECTIVE, "l2 * theta * ", "l2 * theta + 0 * ",
      "the full-batch gradient penalises the intercepts too"),
    M("obj-batch-penalty-dropped", OBJECTIVE, "net.add_penalty_grad(l2)", "pass",
      "minibatch steps without the penalty's gradient"),
    M("obj-block-weight-dropped", OBJECTIVE, "loss += m * (J_B", "loss += (J_B",
      "full-batch sums over row blocks forget each block's weight"),
    # -- optimisers and schedules ----------------------------------------------------------------
    M("optim-sgd-ascent", OPTIM, "v -= lr * grads", "v += lr * grads",
      "momentum SGD climbs the gradient"),
    M("optim-nesterov-dropped", OPTIM, "if self.nesterov:", "if False:",
      "SGD(nesterov=True) runs classical momentum"),
    M("optim-adam-no-bias-correction", OPTIM, "c1, c2 = 1 - b1**self.t, 1 - b2**self.t",
      "c1, c2 = 1.0, 1.0", "Adam without bias correction"),
    M("optim-adamw-decays-intercepts", OPTIM,
      "decay if self.decay_mask is None else decay * self._mask", "decay",
      "AdamW's decay also shrinks the intercepts"),
    M("optim-step-decay-continuous", OPTIM, "gamma ** (epoch // step_size)",
      "gamma ** (epoch / step_size)", "the step schedule decays continuously"),
    M("optim-cosine-sign", OPTIM, "(1 + math.cos(", "(1 - math.cos(",
      "the cosine schedule starts at 0 and ends at η"),
    # -- full-batch solvers ----------------------------------------------------------------------
    M("solver-tol-negated", SOLVERS, 'if state["gmax"] <= tol:', 'if state["gmax"] >= tol:',
      "L-BFGS declares convergence after its first iteration"),
    M("solver-precond-chain-rule", SOLVERS, "(g if P is None else P.grad_to_u(g))",
      "(g if P is None else g)", "the preconditioned gradient misses the chain rule"),
    M("solver-gd-ascent", SOLVERS, "x -= lr * g", "x += lr * g", "gradient ascent"),
    # -- the training loop -----------------------------------------------------------------------
    M("train-no-best-restore", TRAINING,
      'if config.early_stopping and run.position.best["params"] is not None:', "if False:",
      "early stopping keeps the last, not the best, parameters"),
    M("train-tol-sign", TRAINING, 'if monitored < best["loss"] - config.tol:',
      'if monitored < best["loss"] + config.tol:', "a stall counts as an improvement"),
    M("train-resume-replays-epoch", TRAINING, "range(pos.step * bs, n, bs)", "range(0, n, bs)",
      "a run resumed mid-epoch replays the steps already done"),
    # -- estimators ------------------------------------------------------------------------------
    M("est-C-ignored", ESTIMATORS, "scale = 1.0 / (self.C * weight_sum)",
      "scale = 1.0 / weight_sum", "SoftmaxRegression ignores C"),
    M("est-l1-ratio-swapped", ESTIMATORS,
      "return self.l1_ratio * scale, (1.0 - self.l1_ratio) * scale",
      "return (1.0 - self.l1_ratio) * scale, self.l1_ratio * scale",
      "elastic net with the L1 and L2 parts exchanged"),
    M("est-warm-start-ignored", ESTIMATORS,
      "if self._warm() and self.network_.layer_sizes == net.layer_sizes:", "if False:",
      "warm_start=True starts from scratch"),
    M("est-balanced-weights", ESTIMATORS,
      "cw = class_totals.sum() / (len(classes) * class_totals)",
      "cw = class_totals.sum() / class_totals", "'balanced' class weights K times too large"),
    # -- workflow (the use cases behind the CLI) -------------------------------------------------
    M("wf-unstratified-split", WORKFLOW, "return y if counts.min() >= 2 else None", "return None",
      "the hold-out split is not stratified (not scikit-learn's split of the same seed)"),
    M("wf-scored-on-all-rows", WORKFLOW,
      'if training.get("dataset") == dataset and training.get("test") is None:', "if False:",
      "evaluate scores the training data set on all rows, training rows included"),
    # -- model files and checkpoints ---------------------------------------------------------------
    M("pers-nan-params-accepted", PERSISTENCE, '"params contain NaN or infinity")',
      '"params contain NaN or infinity") if False else None',
      "a model file with NaN weights loads"),
    M("pers-newer-format-accepted", PERSISTENCE, "if version > FORMAT_VERSION:",
      "if version > FORMAT_VERSION + 1:", "a file of a newer format is read"),
    M("pers-scaling-not-saved", PERSISTENCE, "    if scaling is not None:\n        arrays",
      "    if False:\n        arrays", "model files lose their preprocessing"),
    M("ckpt-other-data-accepted", CHECKPOINT,
      'if self.meta["data_sha256"] != fingerprint:', "if False:",
      "a checkpoint resumes on other training data"),
    M("ckpt-optimizer-not-restored", CHECKPOINT, "run.optimizer.load_state_dict(self.optimizer)",
      "pass", "resuming forgets the optimiser's state (momentum, Adam moments)"),
    # -- data readers ------------------------------------------------------------------------------
    M("idx-trailing-data-accepted", IDX, "if header.nbytes < room and not compressed:",
      "if False:", "an IDX file with trailing bytes is read"),
    M("idx-bound-unchecked", IDX, "if header.nbytes > room:", "if False:",
      "an IDX header claiming more than the file holds is believed"),
    M("npz-nan-features-accepted", NPZ, 'if X.dtype.kind == "f" and not np.isfinite(X).all():',
      "if False:", "an .npz data set with NaN or infinite features is read"),
    M("npz-member-size-unchecked", NPZ,
      "if info.compress_size > archive_size or info.file_size > most:", "if False:",
      "an .npz member claiming more bytes than deflate can produce is decompressed"),
    M("tabular-float-labels-kept", TABULAR, "return y.astype(np.int64) if whole else y",
      "return y", "whole-number float labels (1.0, 2.0) are not made integers"),
]


def _check(mutations: list[Mutation]) -> None:
    names = [m.name for m in mutations]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise SystemExit(f"duplicate mutation names: {sorted(duplicates)}")


# -- the private copy ----------------------------------------------------------------------------
def make_copy(worktree: bool) -> Path:
    """A copy of the repository's files in a new temporary folder: HEAD (git archive), or the
    working tree's tracked and untracked-but-not-ignored files."""
    dest = Path(tempfile.mkdtemp(prefix="softmaxreg-mutants-"))
    if worktree:
        listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO,
                                check=True, capture_output=True).stdout.split(b"\0")
        for name in filter(None, (n.decode() for n in listed)):
            if (REPO / name).is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / name, dest / name)
    else:
        archive = subprocess.run(["git", "archive", "HEAD"], cwd=REPO, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


@contextmanager
def mutated(copy: Path, m: Mutation) -> Iterator[None]:
    """The copy's ``m.path`` with the mutation applied, put back byte for byte afterwards."""
    path = copy / m.path
    original = path.read_bytes()
    text = original.decode()
    found = text.count(m.old)
    if found != 1:
        raise LookupError(f"{m.path}: the text to mutate occurs {found} times")
    try:
        path.write_text(text.replace(m.old, m.new))
        yield
    finally:
        path.write_bytes(original)


# -- running the tests ---------------------------------------------------------------------------
@dataclass
class Outcome:
    status: str  # killed, timeout, survived, stale (the text to mutate was not found)
    seconds: float
    detail: str


def run_tests(copy: Path, tests: tuple[str, ...], timeout: float) -> Outcome:
    env = dict(os.environ, PYTHONPATH=str(copy), PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTEST_ADDOPTS", None)
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *PYTEST, *tests], cwd=copy, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _stop(proc)
        return Outcome("timeout", time.monotonic() - start, f"ran past {timeout:.0f} s")
    except BaseException:
        _stop(proc)
        raise
    seconds = time.monotonic() - start
    if proc.returncode == 0:
        return Outcome("survived", seconds, _last_line(out))
    return Outcome("killed", seconds, _first_failure(out))


def _stop(proc: subprocess.Popen) -> None:
    """End the pytest run we started, and its children (its own process group)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def _first_failure(out: str) -> str:
    """The first failed test and, from ``--tb=line``, where and why it failed."""
    lines = out.splitlines()
    failed = next((ln for ln in lines if ln.startswith(("FAILED ", "ERROR "))), None)
    where = next((ln for ln in lines if re.match(r"^\S+\.py:\d+: ", ln)), None)
    if failed is None and where is None:
        return _last_line(out)
    where = re.sub(r"^\S*/(tests|softmaxreg)/", r"\1/", where) if where else ""
    return " — ".join(filter(None, [failed, where]))[:400]


def _last_line(out: str) -> str:
    lines = [line for line in out.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


# -- the campaign --------------------------------------------------------------------------------
def campaign(mutations: list[Mutation], copy: Path, timeout: float, baseline: bool,
             report: Path, source: str) -> list[tuple[Mutation, Outcome]]:
    started = time.monotonic()
    if baseline:  # every test the mutations use, once, on the unmutated copy
        tests = _union(m.test_args() for m in mutations)
        outcome = run_tests(copy, tests, 4 * timeout)
        print(f"baseline, {len(tests)} test files: {outcome.status} ({outcome.seconds:.0f} s)",
              flush=True)
        if outcome.status != "survived":
            raise SystemExit(f"the unmutated code fails: {outcome.detail}; fix that first")
    results = []
    for i, m in enumerate(mutations, start=1):
        try:
            with mutated(copy, m):
                outcome = run_tests(copy, m.test_args(), timeout)
        except LookupError as exc:
            outcome = Outcome("stale", 0.0, str(exc))
        results.append((m, outcome))
        print(f"[{i}/{len(mutations)}] {m.name}: {outcome.status} ({outcome.seconds:.0f} s) "
              f"{outcome.detail}", flush=True)
        write_report(results, report, time.monotonic() - started, source, len(mutations))
    return results


def _union(test_lists) -> tuple[str, ...]:
    """The distinct test arguments, without a test whose whole file is already there."""
    args = list(dict.fromkeys(arg for tests in test_lists for arg in tests))
    return tuple(a for a in args if "::" not in a or a.split("::")[0] not in args)


def write_report(results, path: Path, seconds: float, source: str, planned: int) -> None:
    counted = [(m, o) for m, o in results if o.status != "stale"]
    killed = sum(o.status in ("killed", "timeout") for _, o in counted)
    rate = f"{killed / len(counted):.1%}" if counted else "n/a"
    lines = [
        "# Mutation testing report",
        "",
        f"Produced by `python tools/mutate.py` ({source}); {len(results)} of {planned} mutations "
        f"run in {seconds / 60:.1f} minutes.",
        "",
        f"**{killed} of {len(counted)} mutations killed ({rate})**"
        + (f"; {len(results) - len(counted)} stale (text not found)" if len(counted) < len(results)
           else "") + ".",
        "",
        "| # | mutation | file | status | s | what it stands for | first failure |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, (m, o) in enumerate(results, start=1):
        detail = re.sub(r"\s+", " ", o.detail).replace("|", "\\|")
        lines.append(f"| {i} | `{m.name}` | {m.path.removeprefix('softmaxreg/')} | {o.status} | "
                     f"{o.seconds:.0f} | {m.why} | {detail} |")
    survivors = [(m, o) for m, o in results if o.status == "survived"]
    if survivors:
        lines += ["", "## Survivors", ""]
        lines += [f"- `{m.name}` ({m.path}): {m.why}" for m, o in survivors]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run these mutations only")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--worktree", action="store_true",
                        help="copy the working tree's files instead of HEAD")
    parser.add_argument("--keep", action="store_true", help="keep the private copy")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip running each test list on the unmutated copy first")
    parser.add_argument("--tests", nargs="+", metavar="ARG",
                        help="run these pytest arguments instead of each mutation's tests")
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds per run")
    parser.add_argument("--report", type=Path, default=REPORT)
    args = parser.parse_args(argv)
    _check(MUTATIONS)
    chosen = MUTATIONS
    if args.only:
        unknown = set(args.only) - {m.name for m in MUTATIONS}
        if unknown:
            parser.error(f"unknown mutations: {sorted(unknown)}")
        chosen = [m for m in MUTATIONS if m.name in args.only]
    if args.tests:
        chosen = [replace(m, tests=tuple(args.tests)) for m in chosen]
    if args.list:
        for m in chosen:
            print(f"{m.name:32} {m.path:28} {m.why}")
        return 0
    copy = make_copy(args.worktree)
    source = "working tree" if args.worktree else "HEAD " + subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
        text=True).stdout.strip()
    print(f"{len(chosen)} mutations on a copy of the {source} in {copy}", flush=True)
    try:
        results = campaign(chosen, copy, args.timeout, not args.no_baseline, args.report, source)
    except KeyboardInterrupt:
        print("interrupted: every file of the copy is restored; partial report written")
        return 130
    finally:
        if not args.keep:
            shutil.rmtree(copy, ignore_errors=True)
    return 0 if all(o.status != "survived" for _, o in results) else 1


if __name__ == "__main__":
    sys.exit(main())
