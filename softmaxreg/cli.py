"""The ``softmaxreg`` command: argument parsing and printing only (the work is in workflow.py)."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import warnings
from collections.abc import Sequence
from dataclasses import fields, replace

import numpy as np

from ._version import __version__
from .activations import ACTIVATIONS
from .checkpoint import TrainingInterrupted
from .distributed import check_address
from .estimators import NETWORK_SOLVERS, REGRESSION_SOLVERS, SoftmaxNetwork, SoftmaxRegression
from .exceptions import SoftmaxRegError
from .export import DEFAULT_OPSET, export_file
from .images import IMAGE_FORMATS
from .io import BUNDLED, DATA_SUFFIXES, EMPTY_CHOICES, HEADER_CHOICES
from .optim import SCHEDULES
from .preprocessing import METHODS as SCALINGS
from .workflow import (
    MAX_HIDDEN_LAYERS,
    SCOPES,
    STREAM_SOFTMAX_LR,
    TARGET_STEPS,
    TrainSettings,
    check_gradients,
    check_network_fits,
    default_solver,
    evaluate,
    fraction,
    inapplicable,
    nonnegative_real,
    plot,
    positive_int,
    positive_real,
    predict,
    resume_settings,
    seed,
    train,
)

SOLVERS = tuple(dict.fromkeys(REGRESSION_SOLVERS + NETWORK_SOLVERS))  # either model's
DATA_FILES = "/".join(DATA_SUFFIXES)
# read_csv's choice of a label column when none is named (softmaxreg.io.tabular)
CSV_LABEL_RULE = "column named label, else its only column of text, else its last"
DEFAULT = TrainSettings()

TRAIN_EXAMPLES = """examples:
  softmaxreg train                                   # softmax regression on scikit-learn's digits
  softmaxreg train --model network --hidden 128 64   # a 64-128-64-10 network on digits
  softmaxreg train --dataset mnist --out mnist.npz   # MNIST (downloaded once, then cached)
  softmaxreg train --dataset mnist --model network --epochs 15 --out net.npz
  softmaxreg train --dataset data.csv --label-column species --scale standard
  softmaxreg train --model network --solver sgd --checkpoint run.ckpt   # Ctrl-C saves the state
  softmaxreg train --resume run.ckpt --out net.npz   # continue exactly where it stopped
  softmaxreg train --dataset mnist --dask local:2    # on a local Dask cluster of 2 workers
  softmaxreg train --dataset big.csv --stream --chunk-rows 50000   # larger than memory
"""
EVALUATE_EXAMPLES = """examples:
  softmaxreg evaluate mnist.npz --dataset mnist
  softmaxreg evaluate model.npz --dataset test.csv --json
"""
PREDICT_EXAMPLES = """examples:
  softmaxreg predict mnist.npz digit.png --top-k 3
  softmaxreg predict model.npz new_rows.csv --proba > probabilities.csv
  softmaxreg predict digits.npz a.png b.jpg c.tif  # each image in the model's format

Images: each is classified, or gets its own error line on stderr (unreadable, no digit); the
exit status is 1 if any image failed, 0 if all were classified.
"""
PLOT_EXAMPLES = """examples:
  softmaxreg plot mnist.npz --out figures/
  softmaxreg plot mnist.npz --dataset mnist --out figures/
"""
EXPORT_EXAMPLES = """examples:
  softmaxreg export mnist.npz mnist.onnx       # needs pip install 'softmaxreg[onnx]'
"""
GRADCHECK_EXAMPLES = """examples:
  softmaxreg gradcheck
  softmaxreg gradcheck --hidden 5 4 --activation tanh
"""


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors are one line on stderr, exit status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


class _Default:
    """An option's default as ``train`` stores it: argparse keeps the default object itself for
    an option not given, so that an option given with its default's value (``--schedule
    cosine``) is still told from one left alone (see :func:`_unwrap_defaults`)."""

    def __init__(self, value) -> None:
        self.value = value

    def __str__(self) -> str:  # what the help's %(default)s shows
        return str(self.value)


def _mark_defaults(parser: argparse.ArgumentParser) -> None:
    """Wrap the default of each of ``parser``'s options in :class:`_Default`."""
    parser.set_defaults(**{dest: _Default(value)
                           for dest, value in vars(parser.parse_args([])).items()})


def _unwrap_defaults(args: argparse.Namespace) -> frozenset[str]:
    """Put the defaults' values in place of their :class:`_Default` wrappers in ``args``;
    returns the destinations of the options given on the command line."""
    given = set()
    for dest, value in vars(args).items():
        if isinstance(value, _Default):
            setattr(args, dest, value.value)
        else:
            given.add(dest)
    return frozenset(given)


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written; an option's help that does not say its default gets it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default.value if isinstance(action.default, _Default) \
            else action.default
        if ("default" in text or not action.option_strings or default is None
                or default is False or default == argparse.SUPPRESS):
            return text
        shown = " ".join(map(str, default)) if isinstance(
            default, (list, tuple)) else "%(default)s"
        return f"{text} (default: {shown})"


def _stopping_rule() -> str:
    """When a minibatch fit stops before its epochs, in the estimators' own numbers."""
    net, reg = SoftmaxNetwork(), SoftmaxRegression()
    return (f"a minibatch fit once its training loss (with --early-stopping, the validation "
            f"loss) has improved by less than tol={_short(net.tol)} (softmax: "
            f"{_short(reg.tol)}) for {net.n_iter_no_change} epochs in a row")


def _checked(check, convert=int, **options):
    """An argparse type: the text converted by ``convert`` and checked by ``check`` (the
    function TrainSettings checks its values with), so that the CLI and Python refuse alike."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            kind = "an integer" if convert is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {kind}, got {text!r}") from None
        try:
            return check(value, **options)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = check.__name__
    return parse


def _classes(text: str) -> int:
    value = _checked(positive_int)(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be at least 2 (two classes are checked as one "
                                         f"sigmoid unit), got {value}")
    return value


def _address(text: str) -> str:
    try:
        return check_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


_COUNT = _checked(positive_int)


class _HiddenSizes(argparse.Action):
    """``train --hidden``: at most :data:`~softmaxreg.workflow.MAX_HIDDEN_LAYERS` sizes, what
    a model file holds (a usage error, like TrainSettings' ValueError)."""

    def __call__(self, parser, namespace, values, option_string=None):
        if len(values) > MAX_HIDDEN_LAYERS:
            parser.error(f"argument {option_string}: at most {MAX_HIDDEN_LAYERS} hidden layers "
                         f"(what a model file holds), got {len(values)}")
        setattr(namespace, self.dest, values)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="softmaxreg",
        description="Softmax regression and softmax networks with hand-written backpropagation.",
    )
    parser.add_argument("--version", action="version", version=f"softmaxreg {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    fmt = _HelpFormatter

    t = sub.add_parser("train", help="train a model", epilog=TRAIN_EXAMPLES, formatter_class=fmt)
    t.add_argument("--dataset", default=DEFAULT.dataset,
                   help=f"{', '.join(('mnist', *BUNDLED))}, a data file ({DATA_FILES}; an .npz "
                        "holds arrays X and y, and X_test and y_test for a test split of its "
                        "own; a .npy one array of the features and a label column) or a folder "
                        "of IDX files (default: %(default)s)")
    t.add_argument("--test", help="a separate test set (default: the data set's own test split, "
                                  "else a stratified 25%% hold-out)")
    t.add_argument("--model", choices=("softmax", "network"), default=DEFAULT.model,
                   help="softmax regression, or a network with hidden layers and a softmax "
                        "output")
    t.add_argument("--hidden", type=_COUNT, nargs="+", default=DEFAULT.hidden, metavar="N",
                   action=_HiddenSizes, help="hidden layer sizes of the network (at most "
                                             f"{MAX_HIDDEN_LAYERS})")
    t.add_argument("--activation", default=DEFAULT.activation, choices=list(ACTIVATIONS),
                   help="activation of the network's hidden layers")
    t.add_argument("--solver", choices=SOLVERS,
                   help=f"optimiser: {', '.join(REGRESSION_SOLVERS)} for softmax, "
                        f"{', '.join(NETWORK_SOLVERS)} for network (default: lbfgs for softmax, "
                        "adam for network and with --stream)")
    t.add_argument("--epochs", type=_COUNT,
                   help="the most epochs of a minibatch solver, or iterations of lbfgs/fista; "
                        f"fewer run when the fit stops by itself: {_stopping_rule()}, lbfgs "
                        "once every entry of the gradient is below tol (default: "
                        f"{SoftmaxRegression().max_iter} iterations; minibatch: about "
                        f"{TARGET_STEPS} steps, at least 15 and at most 200 epochs)")
    t.add_argument("--batch-size", type=_COUNT, default=DEFAULT.batch_size,
                   help="rows per minibatch step")
    t.add_argument("--lr", type=_checked(positive_real, float),
                   help="initial learning rate (default: sgd 0.01, adam 0.001; softmax with "
                        f"--stream {STREAM_SOFTMAX_LR})")
    t.add_argument("--schedule", choices=SCHEDULES, default=DEFAULT.schedule,
                   help="learning-rate schedule of minibatch solvers (default: %(default)s)")
    reg = t.add_mutually_exclusive_group()
    reg.add_argument("--C", type=_checked(positive_real, float, infinite=True),
                     default=DEFAULT.C,
                     help="inverse L2 strength of softmax regression, as LogisticRegression's "
                          "(inf: no penalty)")
    reg.add_argument("--alpha", type=_checked(nonnegative_real, float), default=DEFAULT.alpha,
                     help="L2 strength of a network, as MLPClassifier's")
    t.add_argument("--seed", type=_checked(seed), default=DEFAULT.seed,
                   help="seed of the splits, the initial weights and the shuffling")
    t.add_argument("--val-fraction", type=_checked(fraction, float),
                   default=DEFAULT.val_fraction,
                   help="hold out this fraction of the training data for validation (0: none)")
    t.add_argument("--early-stopping", action="store_true",
                   help="minibatch solvers: hold out --val-fraction of the training rows (0: "
                        "10%%) and watch their loss instead of the training loss, keeping the "
                        "parameters of its best epoch; without it the training loss is watched "
                        "(see --epochs)")
    t.add_argument("--scale", choices=SCALINGS, default=DEFAULT.scale,
                   help="feature scaling, fitted on the training rows and stored with the "
                        "model; auto decides on the data, whatever the file format: 8-bit pixels "
                        "to [0, 1], sparse data (fewer than half the values non-zero) divided by "
                        "each feature's largest |x| (maxabs), others standardised")
    _table_options(t, f"a CSV file's {CSV_LABEL_RULE}; a .npy file's last column",
                   ", else a download into it")
    t.add_argument("--out", metavar="FILE.npz",
                   help="write the model to this .npz file, which must not be an input or the "
                        "checkpoint (default: not written)")
    t.add_argument("--quiet", action="store_true",
                   help="no progress bar (there is none either when stderr is not a terminal)")
    t.add_argument("--checkpoint", metavar="PATH",
                   help="keep the training state in this file (minibatch solvers); Ctrl-C or "
                        "SIGTERM writes it and stops (default: no checkpoint)")
    t.add_argument("--checkpoint-every", type=_COUNT, default=1, metavar="N",
                   help="write the checkpoint every N epochs")
    t.add_argument("--resume", metavar="PATH",
                   help="continue the run saved in this checkpoint, with its settings "
                        "(default: a new run)")
    scale_out = t.add_mutually_exclusive_group()
    scale_out.add_argument("--dask", metavar="ADDRESS", type=_address,
                           help="fit on a Dask cluster: local:N starts N workers on this "
                                "machine (at most its cores), tcp://HOST:PORT joins a running "
                                "scheduler (default: in this process)")
    scale_out.add_argument("--stream", action="store_true",
                           help="read the training data chunk by chunk (data larger than "
                                "memory; minibatch solvers; a data file, an IDX folder or "
                                "mnist), with the same test part and scaling as in memory")
    t.add_argument("--chunk-rows", type=_COUNT, default=10_000, metavar="N",
                   help="rows per chunk with --stream")
    _mark_defaults(t)  # which options were given: see _not_applying

    e = sub.add_parser("evaluate", help="measure a saved model on a data set",
                       epilog=EVALUATE_EXAMPLES, formatter_class=fmt)
    e.add_argument("model", help="a model file (train --out)")
    e.add_argument("--dataset",
                   help="mnist, a bundled set or a data file; the model's training data set is "
                        "scored on its held-out part (default: the data set the model was "
                        "trained on)")
    _table_options(e, "the one the model was trained with", "")
    e.add_argument("--json", action="store_true", help="machine-readable output")

    p = sub.add_parser("predict", help="classify rows of a data file or images of digits",
                       epilog=PREDICT_EXAMPLES, formatter_class=fmt)
    p.add_argument("model", help="a model file (train --out)")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help=f"a data file ({DATA_FILES}), or images of digits "
                        f"({', '.join(IMAGE_FORMATS)})")
    shown = p.add_mutually_exclusive_group()
    shown.add_argument("--proba", action="store_true",
                       help="print every class probability as CSV")
    shown.add_argument("--json", action="store_true",
                       help="print JSON: the classes, and for each input its predicted class and "
                            "every class probability (full precision)")
    p.add_argument("--top-k", type=_COUNT, default=1,
                   help="print this many most probable classes per input")
    _table_options(p, "the one the model was trained with; ignored if present, and a file may "
                      "also have none")

    g = sub.add_parser("plot", help="draw learning curves, confusion matrix, weights, mistakes",
                       epilog=PLOT_EXAMPLES, formatter_class=fmt)
    g.add_argument("source", metavar="MODEL|HISTORY", help="a model .npz or a history .json")
    g.add_argument("--dataset", help="data for the confusion matrix and the mistakes "
                                     "(default: the data set the model was trained on)")
    g.add_argument("--data-dir", metavar="FOLDER",
                   help="folder holding MNIST's IDX files (default: $SOFTMAXREG_DATA, else the "
                        "cache)")
    g.add_argument("--out", required=True, metavar="FOLDER",
                   help="folder for the PNG files (made if missing; not a file)")

    x = sub.add_parser("export", help="write a model file as an ONNX graph (raw features in; "
                                      "labels and probabilities out)",
                       epilog=EXPORT_EXAMPLES, formatter_class=fmt)
    x.add_argument("model", help="a model .npz (train --out)")
    x.add_argument("out", metavar="OUT.onnx", help="the ONNX file to write")
    x.add_argument("--opset", type=_COUNT, default=DEFAULT_OPSET,
                   help="ONNX operator set version (default: %(default)s)")

    c = sub.add_parser("gradcheck", help="check backpropagation against finite differences",
                       epilog=GRADCHECK_EXAMPLES, formatter_class=fmt)
    c.add_argument("--hidden", type=_COUNT, nargs="*", default=[5, 4], metavar="N",
                   help="hidden layer sizes of the random network (none: softmax regression)")
    c.add_argument("--activation", default="tanh", choices=list(ACTIVATIONS),
                   help="activation of the hidden layers")
    c.add_argument("--inputs", type=_COUNT, default=6, help="number of input features")
    c.add_argument("--classes", type=_classes, default=3,
                   help="number of classes (2: one sigmoid output unit)")
    c.add_argument("--seed", type=_checked(seed), default=0,
                   help="seed of the random network and data")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    0 success; 1 an error in the data, the files or the run (one line on stderr); 2 a usage
    error: an option refused when parsed, from the command line alone (one line); 130
    interrupted (Ctrl-C, at any point after the interpreter starts: see the console script's
    entry point); 141 the reader of the output left (``| head -1``), which ends the command
    quietly.
    """
    command = "softmaxreg"
    try:
        args = _parser().parse_args(argv)
        if args.command is None:
            _parser().print_help()
            return 2
        command = f"softmaxreg {args.command}"
        args.given = _unwrap_defaults(args)
        problem = _not_applying(args) or _too_large(args)
        if problem:
            print(f"{command}: error: {problem} (see {command} --help)", file=sys.stderr)
            return 2
        try:
            status = COMMANDS[args.command](args)
        except (SoftmaxRegError, ValueError, OSError) as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            print(f"{command}: error: {cli_words(str(exc))}", file=sys.stderr)
            return 1
        except MemoryError as exc:  # numpy's message gives the size it could not allocate
            detail = f" ({exc})" if str(exc) else ""
            print(f"{command}: error: out of memory{detail}; the data or the model is too "
                  "large for this machine", file=sys.stderr)
            return 1
        sys.stdout.flush()  # here, where a reader that left can still be noticed
        return status
    except KeyboardInterrupt:
        print(f"{command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader of stdout left (`| head -1`): the rest is not wanted. Point stdout at
        # /dev/null so that Python's flush at exit does not fail again.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 141


# train's options that only a run asked for by other options uses: {option: those options}
NEEDS = {"chunk_rows": ("stream",), "checkpoint_every": ("checkpoint", "resume")}


def _not_applying(args) -> str | None:
    """Why the first option given to ``train`` that its model and solver do not use (see
    :func:`~softmaxreg.workflow.inapplicable`) does not apply, or None."""
    if args.command == "predict" and (args.proba or args.json) and args.top_k != 1:
        return (f"argument --top-k: --{'proba' if args.proba else 'json'} prints every class's "
                "probability; --top-k chooses how many the plain output shows")
    if args.command != "train":
        return None
    own = NETWORK_SOLVERS if args.model == "network" else REGRESSION_SOLVERS
    if args.solver is not None and args.solver not in own:
        return (f"argument --solver: {args.solver} is not a solver of --model {args.model} "
                f"(its solvers: {', '.join(own)})")
    for setting, needs in NEEDS.items():
        if setting in args.given and not any(getattr(args, n) for n in needs):
            return (f"argument {_option(setting)}: applies with "
                    f"{' or '.join(map(_option, needs))} only")
    if args.resume:  # a resumed run takes no settings at all
        return None
    solver = args.solver or default_solver(args.model, args.stream)
    for setting, why in inapplicable(args.model, solver).items():
        if setting in args.given:
            if SCOPES[setting] == "minibatch" and "solver" not in args.given:
                why += f"; --model {args.model} trains with {solver} unless --solver names another"
            return f"argument {_option(setting)}: {why}"
    return None


def _option(setting: str) -> str:
    """The option of a :class:`~softmaxreg.workflow.TrainSettings` field: ``--batch-size``."""
    return "--" + setting.replace("_", "-")


def _too_large(args) -> str | None:
    """Why the network the options describe cannot fit in memory, whatever the data (one input
    and two classes at least), or None."""
    shown = None
    if args.command == "train" and args.model == "network" and not args.resume:
        solver = args.solver or "adam"
        sizes, itemsize, option = [1, *args.hidden, 1], 4 if solver != "lbfgs" else 8, "--hidden"
        shown = f"hidden layers {'-'.join(map(str, args.hidden))}"  # the data's sizes unknown
    elif args.command == "gradcheck":
        sizes, itemsize = [args.inputs, *args.hidden, args.classes], 8
        solver, option = "sgd", "--inputs/--hidden/--classes"
    else:
        return None
    try:
        check_network_fits(sizes, solver, itemsize, "the network", shown)
    except ValueError as exc:
        return f"argument {option}: {exc}"
    return None


# Python's names for the settings the CLI calls by its options, in the messages of warnings and
# errors that the library raises (scikit-learn's ConvergenceWarning speaks of max_iter).
CLI_WORDS = (
    (r"\bmax_iter=(\d+)", r"--epochs, now \1"),
    (r"\bmax_iter\b", "--epochs"),
    (r"\blearning_rate_init\b", "--lr"),
    (r"\bhidden_layer_sizes\b", "--hidden"),
    (r"\bbatch_size\b", "--batch-size"),
    (r"\bvalidation_fraction\b", "--val-fraction"),
    (r"\bearly_stopping\b", "--early-stopping"),
    (r"\brandom_state\b", "--seed"),
    (r"\bsmaller C\b", "smaller --C"),
    (r"scale (the data|them), e\.g\. with sklearn\.preprocessing\.StandardScaler",
     r"scale \1 (--scale standard, the default for such features)"),
)


def cli_words(message: str) -> str:
    """``message`` with the library's parameter names replaced by the CLI's options."""
    for pattern, replacement in CLI_WORDS:
        message = re.sub(pattern, replacement, message)
    return message


def _train(args) -> int:
    settings = _settings(args)
    with _warnings_on_stderr():  # as they come: one may say why the run fails
        try:
            result = train(settings, out=args.out, checkpoint=args.checkpoint,
                           checkpoint_every=args.checkpoint_every, resume=args.resume,
                           dask=args.dask, stream=args.stream, chunk_rows=args.chunk_rows)
        except TrainingInterrupted as exc:
            print(f"softmaxreg train: {exc}", file=sys.stderr)
            return 128 + exc.signum
    return _report_training(result, args.out)


def _settings(args) -> TrainSettings:
    """The run the options describe; with --resume, the run stored in the checkpoint."""
    options = [f.name for f in fields(TrainSettings) if f.name in vars(args)]
    if args.resume:  # where the data are is not a setting of the run: --data-dir may move
        given = [o for o in options if o != "data_dir" and o in args.given]
        if given:
            raise ValueError(f"--resume continues a run with the settings it was started with; "
                             f"drop {_option(given[0])}")
        settings = resume_settings(args.resume, progress=_progress(args))
        return settings if args.data_dir is None else replace(settings, data_dir=args.data_dir)
    values = {o: getattr(args, o) for o in options}
    values["hidden"] = tuple(args.hidden)
    return TrainSettings(**values, progress=_progress(args))


def _progress(args) -> bool:
    """Progress bars are for a person watching: none with --quiet, nor when stderr is not a
    terminal (a log file would get every frame of the bar)."""
    return not args.quiet and sys.stderr.isatty()


def _report_training(result, out) -> int:
    r = result.report
    print(f"{r['model']} on {r['dataset']}: {r['n_parameters']} parameters, "
          f"fitted in {r['fit_seconds']:.2f} s")
    if "label_column" in r:  # chosen by default: say which
        print(f"  label column {r['label_column']!r} ({r['n_classes']} classes)")
    if "stopped" in r:
        s = r["stopped"]
        print(f"  stopped after {s['epochs']} of {s['max_epochs']} epochs: the "
              f"{s['monitored']} loss improved by less than tol={_short(s['tol'])} for "
              f"{s['n_iter_no_change']} epochs")
    for name in ("train", "validation", "test"):
        if name in r:
            print(f"  {name:<10} accuracy {r[name]['accuracy']:.4f}   "
                  f"log loss {r[name]['log_loss']:.4f}")
    if out:
        print(f"model written to {out}")
    return 0


def _short(x: float) -> str:
    """1e-4, not 0.0001: a tolerance as the help and the docs write it."""
    return np.format_float_scientific(x, trim="-", exp_digits=1) if x else "0"


def _column(value: str) -> str | int:
    """A label column by index (``3``, ``-1``) or by name."""
    return int(value) if value.lstrip("-").isdigit() else value


def _table_options(parser: argparse.ArgumentParser, label_default: str,
                   download: str | None = None) -> None:
    """--label-column, --header and --empty-cells: how a CSV/TSV file (and the label column
    of a .npy file) is read; and --data-dir, where MNIST is found (not for predict, whose data
    are files)."""
    parser.add_argument("--label-column", type=_column,
                        help="the label column of a CSV file, by name or index, or of a .npy "
                             f"file, by index (default: {label_default})")
    if download is not None:
        parser.add_argument("--data-dir", metavar="FOLDER",
                            help="folder holding MNIST's IDX files (default: $SOFTMAXREG_DATA, "
                                 f"else the cache{download})")
    parser.add_argument("--header", choices=HEADER_CHOICES, default="auto",
                        help="CSV: whether the first row names the columns; auto recognises a "
                             "header by its names (default: %(default)s)")
    parser.add_argument("--empty-cells", dest="empty", choices=EMPTY_CHOICES, default="error",
                        help="CSV: an empty feature cell is an error naming its line and column, "
                             "drops its row, or reads as zero (default: %(default)s)")


@contextlib.contextmanager
def _warnings_on_stderr():
    """Each warning the library gives inside the block as one line on stderr, in the CLI's
    words, when it is given (one may announce a long wait: gradcheck's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = lambda message, *args, **kwargs: print(
            f"warning: {cli_words(str(message))}", file=sys.stderr, flush=True)
        yield


def _evaluate(args) -> int:
    with _warnings_on_stderr():
        m = evaluate(args.model, args.dataset, label_column=args.label_column,
                     data_dir=args.data_dir, header=args.header, empty=args.empty)
    if m.get("note"):
        print(f"softmaxreg evaluate: note: {m['note']}", file=sys.stderr)
    if args.json:
        print(json.dumps(m, indent=2))
        return 0
    examples = "example" if m["n"] == 1 else "examples"
    print(f"accuracy {m['accuracy']:.4f}   log loss {m['log_loss']:.4f}   ({m['n']} {examples})\n")
    width = max(5, *(len(str(c)) for c in m["classes"]))
    print(f"{'class':>{width}}  precision  recall     f1  support")
    for i, c in enumerate(m["classes"]):
        print(f"{str(c):>{width}}  {m['precision'][i]:9.4f}  {m['recall'][i]:6.4f}  "
              f"{m['f1'][i]:5.4f}  {m['support'][i]:7d}")
    print("\nconfusion matrix (rows: true class, columns: predicted)")
    cm = np.asarray(m["confusion_matrix"])
    cell = max(len(str(cm.max())), *(len(str(c)) for c in m["classes"])) + 1
    print(" " * width + "".join(f"{str(c):>{cell}}" for c in m["classes"]))
    for c, row in zip(m["classes"], cm):
        print(f"{str(c):>{width}}" + "".join(f"{v:>{cell}}" for v in row))
    return 0


def _predict(args) -> int:
    with _warnings_on_stderr():
        out = predict(args.model, args.inputs, top_k=args.top_k,
                      label_column=args.label_column, header=args.header, empty=args.empty)
    if args.json:
        P = out["proba_all"]
        labels = np.asarray(out["class_labels"], dtype=object)[np.argmax(P, axis=1)]
        print(json.dumps({"classes": out["class_labels"], "inputs": out["inputs"],
                          "predicted": labels.tolist(), "probabilities": P.tolist(),
                          "errors": [{"input": i, "error": e} for i, e in out["errors"]],
                          "dropped_rows": out["dropped_rows"]}, indent=1))
    elif args.proba:
        print(",".join(["input", *map(str, out["class_labels"])]))
        for name, row in zip(out["inputs"], out["proba_all"]):
            print(",".join([name, *(f"{p:.6g}" for p in row)]))
    else:
        for name, classes, probs in zip(out["inputs"], out["classes"], out["probabilities"]):
            tops = "  ".join(f"{c} ({p:.3f})" for c, p in zip(classes, probs))
            print(f"{name}: {tops}")
    if out["dropped_rows"]:  # the rows printed keep their numbers in the file
        rows = out["dropped_rows"]
        shown = ", ".join(map(str, rows[:20])) + (f" and {len(rows) - 20} more"
                                                   if len(rows) > 20 else "")
        print(f"softmaxreg predict: note: {len(rows)} row{'s' if len(rows) != 1 else ''} with "
              f"empty cells dropped (data rows {shown}, counted from 0)", file=sys.stderr)
    for _, message in out["errors"]:  # every other image is classified; the status says so
        print(f"softmaxreg predict: error: {message}", file=sys.stderr)
    return 1 if out["errors"] else 0


def _plot(args) -> int:
    with _warnings_on_stderr():
        result = plot(args.source, args.out, dataset=args.dataset, data_dir=args.data_dir)
    for path in result.paths:
        print(path)
    for name, why in result.skipped.items():
        print(f"skipped {name}: {why}")
    return 0


def _export(args) -> int:
    export_file(args.model, args.out, opset=args.opset)
    print(f"ONNX graph written to {args.out} (input X: raw features; outputs label, "
          "probabilities)")
    return 0


def _gradcheck(args) -> int:
    with _warnings_on_stderr():
        sizes, errors, ok = check_gradients(args.inputs, args.hidden, args.classes,
                                            args.activation, seed=args.seed)
    print(f"network {'-'.join(map(str, sizes))}, activation {args.activation}, "
          f"{'sigmoid' if sizes[-1] == 1 else 'softmax'} output; central differences, float64")
    for e in errors:
        size = e.shape[0] * (e.shape[1] + 1)
        print(f"  layer {e.layer}  W {e.shape[0]}x{e.shape[1]}  max relative error "
              f"{e.max_rel_error:.2e}  ({e.checked} of {size} parameters checked)")
    print("OK: backpropagation agrees with finite differences" if ok
          else "FAILED: relative error above 1e-6")
    return 0 if ok else 1


COMMANDS = {"train": _train, "evaluate": _evaluate, "predict": _predict, "plot": _plot,
            "export": _export, "gradcheck": _gradcheck}


if __name__ == "__main__":
    sys.exit(main())
