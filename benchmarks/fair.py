"""A fair side-by-side benchmark of softmaxreg, scikit-learn and PyTorch (CPU) on MNIST.

    python benchmarks/fair.py --data ../shared/data/mnist               # the full run
    python benchmarks/fair.py --quick --data digits                      # a smoke test, ~2 min
    python benchmarks/fair.py --quick --tasks exact --problems sparse    # the sparse exact fit
    python benchmarks/report.py --readme README.md                       # the README's table

Fair means:
  * the same data for every library: MNIST 60k/10k, float32 in [0, 1], loaded once and saved to
    .npy files that every process memory-maps (``--tasks exact64``: the exact fit on the same
    values in float64);
  * each library measured in a process of its own, one per (library, task, thread setting), so
    no two libraries' thread pools share a process; only one process computes at a time;
  * a warm-up run discarded, then ``--repeats`` repetitions with the order of the libraries
    rotated between repetitions; medians with min–max and quartiles;
  * every library at each of ``--threads`` (threadpoolctl for NumPy/scipy/scikit-learn,
    ``torch.set_num_threads`` for PyTorch), its best setting reported beside the all-threads one.

Tasks (``--tasks``):
  exact     softmax regression, C = 1, timed until the objective is within 1e-4 (relative) of f*
            (``results/f_star.json``): ours, scikit-learn lbfgs, torch.optim.LBFGS (float32, else
            float64 when float32 stalls; the stall is reported)
  exact64   the same in float64 (not in the default set: it doubles the longest task)
  defaults  ``SoftmaxRegression()`` against ``LogisticRegression()``: time to stop, gap reached
  epoch     784-128-64-10 network, Adam 1e-3, batch 128, no penalty: seconds per epoch, ours,
            a plain PyTorch loop and MLPClassifier
  accuracy  test accuracy after ``--epochs`` epochs of the same training (ours, PyTorch), once
  predict   predict_proba throughput on the test rows, softmax regression and the network

Problems (``--problems``, default all three): the exact fits (``exact``, ``exact64``) run on each,
one row group per problem in the table; the other tasks run on MNIST only (see ``problems.py``).
  mnist     MNIST (``--data``)
  fashion   Fashion-MNIST, the same IDX files (``--fashion-data`` or $SOFTMAXREG_FASHION_DATA);
            without them the run says so and the table says "not measured"
  sparse    20 newsgroups TF-IDF where scikit-learn has it cached, else a seeded synthetic corpus
            of its shape (11,314 × 130,107, 20 classes, 1.8 M non-zeros; cached in
            ``results/cache``); CSR float32 for every library, a sparse CSR tensor for PyTorch
f* is computed once per problem (float64, tol 1e-10) and cached for the full-size data
(``results/f_star.json`` for MNIST, ``results/f_star_<problem>.json`` for the others).

The scikit-learn and PyTorch exact fits take 45–110 s each; they get ``--exact-repeats``
repetitions (default 3) and a warm-up cut at 20 objective evaluations.  The default run takes
about 22 minutes on a quiet 2-core machine, 17 with ``--exact-repeats 2``; ``exact64`` adds about
20 (11 with ``--libraries ours sklearn``: PyTorch's float64 fit is in the float32 table already
when its float32 fit stalls).  Of the exact fit's other problems (an estimate from one-thread
runs), Fashion-MNIST adds about 11 minutes, like MNIST's exact fit, and the sparse problem about
6 (each fit 8–11 s at one thread; ours is calibrated by some 9 whole fits in its warm-up), plus
about a minute for its f* the first time.  Results go to ``--out`` (``results/fair.json``) and
its markdown table beside it (``results/fair.md``); each worker's output to ``logs/`` beside them.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import problems  # noqa: E402
import report  # noqa: E402

SCHEMA = "softmaxreg-fair-benchmark/1"
GAP = 1e-4
TASKS = ("exact", "exact64", "defaults", "epoch", "accuracy", "predict")
EXACT_TASKS = ("exact", "exact64")  # the tasks that run on every problem
DEFAULT_TASKS = ("exact", "defaults", "epoch", "accuracy", "predict")
LIBRARIES = {
    "exact": ("ours", "sklearn", "torch"),
    "exact64": ("ours", "sklearn", "torch"),
    "defaults": ("ours", "sklearn"),
    "epoch": ("ours", "torch", "sklearn"),
    "accuracy": ("ours", "torch"),
    "predict": ("ours", "torch", "sklearn"),
}
# the numbers each task compares, all times in seconds (lower is better)
METRICS = {"exact": ("seconds",), "exact64": ("seconds",), "defaults": ("seconds",),
           "epoch": ("seconds",), "accuracy": ("seconds",),
           "predict": ("softmax_seconds", "network_seconds")}
# targets of issue 14, as speed-ups of ours (library time ÷ ours), for the table
TARGETS = {"exact": {"sklearn": 15.0, "torch": 5.0}, "epoch": {"torch": 1 / 0.6},
           "predict": {"torch": 1.0}}
OPENBLAS_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # they slow current NumPy here


@dataclass
class Config:
    tasks: tuple[str, ...] = DEFAULT_TASKS
    problems: tuple[str, ...] = problems.PROBLEMS
    libraries: tuple[str, ...] = ("ours", "sklearn", "torch")
    threads: tuple[int, ...] = (1, 2)
    repeats: int = 5
    exact_repeats: int = 3  # scikit-learn's and PyTorch's exact fits: 30-100 s each
    max_evals: int = 1500  # objective evaluations before an exact fit is called off
    warmup_evals: int = 20  # the references' exact-fit warm-up, cut short
    epochs: int = 15
    predict_calls: int = 20
    n_train: int | None = None  # rows kept (None: all)
    n_test: int | None = None
    pause: float = 0.25  # seconds before each timed run, for idle thread pools to fall asleep
    timeout: float = 1800.0  # per command
    setup_timeout: float = 300.0
    quick: bool = False
    gap: float = GAP

    @classmethod
    def quick_run(cls, **overrides) -> Config:
        return cls(**{**dict(repeats=2, exact_repeats=2, max_evals=300, warmup_evals=5,
                             epochs=2, predict_calls=3, n_train=3000, n_test=1000, pause=0.0,
                             timeout=300.0, quick=True), **overrides})

    def repeats_for(self, task: str, library: str) -> int:
        if task == "accuracy":
            return 1
        if task.startswith("exact") and library != "ours":
            return self.exact_repeats
        return self.repeats


# -- data -------------------------------------------------------------------------------------
def needs_mnist(cfg: Config) -> bool:
    return "mnist" in cfg.problems or any(t not in EXACT_TASKS for t in cfg.tasks)


def load_problem(name: str, source: str | None, fashion: str | None, cfg: Config,
                 cache: Path) -> tuple[tuple | None, str, object]:
    """(arrays or None, source, path): the four arrays of one problem, or None and why not."""
    if name == "mnist":
        if source == "digits":
            return problems.load_digits(), "digits", None
        return problems.load_idx(source), "mnist", source
    if name == "fashion":
        folder = problems.fashion_folder(fashion)
        if folder is None:
            return None, problems.NO_FASHION, None
        return problems.load_idx(folder, verify_mnist=False), "fashion", folder
    arrays, kind = problems.load_sparse(cfg.quick, cache)
    return arrays, kind, None


def prepare_problem(arrays: tuple, kind: str, path, cfg: Config, folder: Path) -> dict:
    """Keep ``n_train``/``n_test`` rows, save the files the workers read, describe the data."""
    X, y, Xt, yt = arrays
    kept = (X[:cfg.n_train], y[:cfg.n_train], Xt[:cfg.n_test], yt[:cfg.n_test])
    saved = problems.save_arrays(kept, folder, float64="exact64" in cfg.tasks)
    full = {"mnist": X.shape[0] == 60000, "fashion": X.shape[0] == 60000,
            "digits": False}.get(kind, X.shape[0] == problems.NEWSGROUPS.n_train)
    return problems.describe(kind, path, saved, full and kept[0].shape[0] == X.shape[0])


def prepare_data(source: str | None, fashion: str | None, cfg: Config, work: Path,
                 cache: Path) -> dict:
    """{problem: {"data": ...}} for the problems measured, {"not_measured": why} for the others;
    each problem's files in ``work/<problem>``, MNIST's also for the tasks other than the
    exact fits."""
    names = [p for p in problems.PROBLEMS if p in cfg.problems]
    if needs_mnist(cfg) and "mnist" not in names:
        names.insert(0, "mnist")
    out = {}
    for name in names:
        arrays, kind, path = load_problem(name, source, fashion, cfg, cache)
        if arrays is None:
            say(f"{name}: not measured: {kind}")
            out[name] = {"not_measured": kind}
        else:
            out[name] = {"data": prepare_problem(arrays, kind, path, cfg, work / name)}
    return out


# -- one process per (library, task, thread setting) ----------------------------------------
def child_env(threads: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in OPENBLAS_VARS}
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    return env


class Worker:
    """A ``worker.py`` process; one JSON answer per command, with a timeout."""

    def __init__(self, spec: dict, log: Path):
        self.log = log
        with log.open("w") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(HERE / "worker.py"), json.dumps(spec)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True,
                env=child_env(spec["threads"]), start_new_session=True)

    def receive(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            self.kill()
            return {"status": "error", "error": f"no answer within {timeout:.0f} s; killed"}
        line = self.proc.stdout.readline()
        if not line:
            code = self.proc.wait()
            return {"status": "error", "error": f"the worker exited with code {code}",
                    "log_tail": self.log_tail()}
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            return {"status": "error", "error": f"unreadable answer {line[:200]!r}"}

    def request(self, command: str, timeout: float) -> dict:
        try:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            return {"status": "error", "error": "the worker is gone",
                    "log_tail": self.log_tail()}
        return self.receive(timeout)

    def log_tail(self, chars: int = 1500) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.is_file() else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: only this worker
            self.proc.wait()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
                self.proc.wait(timeout=30)
            except (BrokenPipeError, OSError, subprocess.TimeoutExpired):
                self.kill()


@dataclass
class Run:
    """What the groups share: settings, paths, f*, and hints passed between thread settings."""
    cfg: Config
    data_dir: Path
    log_dir: Path
    f_star: float = math.nan
    hints: dict = field(default_factory=dict)
    problem: str = "mnist"

    def for_problem(self, problem: str, data_dir: Path, f_star: float) -> Run:
        """The same run on another problem's data, with its own f* and no hints of others."""
        return replace(self, problem=problem, data_dir=data_dir, f_star=f_star, hints={})

    def tag(self, task: str) -> str:
        """The task's name in labels and log files, with the problem where it is not MNIST."""
        return task if self.problem == "mnist" else f"{task}-{self.problem}"

    def spec(self, task: str, library: str, threads: int) -> dict:
        return {"task": task, "library": library, "threads": threads, "data": str(self.data_dir),
                "f_star": self.f_star, "gap": self.cfg.gap, "max_evals": self.cfg.max_evals,
                "warmup_evals": self.cfg.warmup_evals, "epochs": self.cfg.epochs,
                "predict_calls": self.cfg.predict_calls,
                "hint": self.hints.get((task, library))}


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fail(entry: dict, answer: dict, stage: str) -> None:
    entry["status"] = "failed"
    entry["error"] = f"{stage}: {answer.get('error', 'unknown error')}"
    tail = answer.get("traceback") or answer.get("log_tail")
    if tail:
        entry["error_detail"] = tail


def run_group(run: Run, task: str, libraries: list[str], threads: int) -> dict[str, dict]:
    """Every library of one task at one thread setting: start, warm up, rotate repetitions."""
    cfg, label = run.cfg, f"[{run.tag(task)} · {threads} thread{'s' if threads > 1 else ''}]"
    logs = {lib: run.log_dir / f"{run.tag(task)}-{lib}-t{threads}.log" for lib in libraries}
    # setup (imports, data, models) is not timed, so the processes start side by side
    workers = {lib: Worker(run.spec(task, lib, threads), logs[lib]) for lib in libraries}
    entries = {lib: {"threads": threads, "status": "ok", "runs": [], "log": logs[lib].name}
               for lib in libraries}
    try:
        for lib, worker in workers.items():
            answer = worker.receive(cfg.setup_timeout)
            if answer.get("status") == "ready":
                entries[lib]["setup"] = answer["info"]
            else:
                fail(entries[lib], answer, "setup")
        for lib in libraries:
            _warm_up(run, task, lib, workers[lib], entries[lib], label)
        for r in range(max(cfg.repeats_for(task, lib) for lib in libraries)):
            shift = r % len(libraries)
            for lib in libraries[shift:] + libraries[:shift]:
                entry = entries[lib]
                if entry["status"] == "ok" and len(entry["runs"]) < cfg.repeats_for(task, lib):
                    _repeat(run, task, lib, workers[lib], entry, label)
    finally:
        for worker in workers.values():
            worker.close()
    for lib, entry in entries.items():
        if entry["status"] != "ok":
            say(f"{label} {lib} FAILED — {entry['error']} (log: {logs[lib]})")
    return entries


def _warm_up(run: Run, task: str, lib: str, worker: Worker, entry: dict, label: str) -> None:
    if entry["status"] != "ok":
        return
    answer = worker.request("warmup", run.cfg.timeout)
    if answer.get("status") != "ok":
        fail(entry, answer, "warm-up")
        return
    entry["warmup"] = answer["result"]
    if answer["result"].get("hint") is not None:  # what the next thread setting can start from
        run.hints[(task, lib)] = answer["result"]["hint"]
    say(f"{label} {lib} warmed up")


def _repeat(run: Run, task: str, lib: str, worker: Worker, entry: dict, label: str) -> None:
    time.sleep(run.cfg.pause)
    answer = worker.request("run", run.cfg.timeout)
    if answer.get("status") != "ok":
        fail(entry, answer, f"repetition {len(entry['runs']) + 1}")
        return
    result = answer["result"]
    entry["runs"].append(result)
    shown = ", ".join(f"{k} {v:.4g}" for k, v in result.items()
                      if isinstance(v, float) and k.endswith("seconds"))
    say(f"{label} {lib} repetition {len(entry['runs'])}: {shown}")


# -- f* ---------------------------------------------------------------------------------------
def f_star_cache(problem: str) -> Path:
    name = "f_star.json" if problem == "mnist" else f"f_star_{problem}.json"
    return HERE / "results" / name


def resolve_f_star(run: Run, data: dict, cache: Path) -> dict:
    """f* from the cache for the full data (checked by the data's digest when the cache has
    one), else computed in a worker process: ours, float64, tol 1e-10."""
    if data["full"] and cache.is_file():
        cached = json.loads(cache.read_text())
        if cached.get("data_sha256", data["sha256"]) == data["sha256"]:
            note = "" if "data_sha256" in cached else " (written before digests were kept)"
            return {"value": cached["f_star"], "source": f"cache {cache.name}{note}"}
    say(f"computing f* of {run.problem} ({data['source']} data; float64, tol 1e-10) …")
    worker = Worker(run.spec("fstar", "ours", max(run.cfg.threads)),
                    run.log_dir / f"{run.tag('fstar')}.log")
    try:
        answer = worker.receive(run.cfg.setup_timeout)
        if answer.get("status") == "ready":
            answer = worker.request("run", run.cfg.timeout)
    finally:
        worker.close()
    if answer.get("status") != "ok":
        raise RuntimeError(f"f* could not be computed: {answer.get('error')}")
    result = answer["result"]
    if data["full"]:
        cache.write_text(json.dumps({"f_star": result["f_star"], "n_iter": result["n_iter"],
                                     "data_sha256": data["sha256"], "computed": now()}))
    return {"value": result["f_star"], "source": "computed for this run", **result}


# -- summaries ----------------------------------------------------------------------------------
def spread(values: list[float]) -> dict:
    values = sorted(v for v in values if isinstance(v, (int, float)) and math.isfinite(v))
    if not values:
        return {"n": 0}
    q1, _, q3 = (statistics.quantiles(values, n=4, method="inclusive") if len(values) > 1
              else (values[0],) * 3)
    return {"median": statistics.median(values), "min": values[0], "max": values[-1],
            "q1": q1, "q3": q3, "n": len(values)}


def summarize_entry(entry: dict) -> None:
    runs = entry["runs"]
    keys = [k for k, v in (runs[0].items() if runs else ()) if isinstance(v, (int, float))
            and not isinstance(v, bool)]
    entry["summary"] = {k: spread([r.get(k) for r in runs]) for k in keys}
    if runs and "reached" in runs[0]:
        entry["summary"]["reached"] = sum(bool(r.get("reached")) for r in runs)


def best_setting(settings: dict, metric: str) -> dict | None:
    """The thread setting with the lowest median of ``metric``."""
    found = [(s["summary"][metric]["median"], t) for t, s in settings.items()
             if s.get("summary", {}).get(metric, {}).get("n")]
    if not found:
        return None
    median, threads = min(found)
    return {"threads": int(threads), "median": median}


def ratio(ref: dict, ours: dict) -> dict:
    """Speed-up of ours = library time ÷ ours, with the range of the two spreads."""
    return {"median": ref["median"] / ours["median"], "low": ref["min"] / ours["max"],
            "high": ref["max"] / ours["min"]}


def summarize_task(task: str, libs: dict, threads: tuple[int, ...]) -> dict:
    for lib in libs.values():
        for entry in lib["settings"].values():
            summarize_entry(entry)
        lib["best"] = {m: best_setting(lib["settings"], m) for m in METRICS.get(task, ())}
    out: dict = {}
    ours, top = libs.get("ours"), str(max(threads))
    if ours is None:
        return out
    for name, lib in libs.items():
        if name == "ours":
            continue
        for metric in METRICS.get(task, ()):
            cell = {}
            a, b = (lib["settings"].get(top, {}).get("summary", {}).get(metric),
                    ours["settings"].get(top, {}).get("summary", {}).get(metric))
            if a and b and a.get("n") and b.get("n"):
                cell["at_threads"] = {"threads": int(top), **ratio(a, b)}
            lb, ob = lib["best"].get(metric), ours["best"].get(metric)
            if lb and ob:
                a = lib["settings"][str(lb["threads"])]["summary"][metric]
                b = ours["settings"][str(ob["threads"])]["summary"][metric]
                cell["at_best"] = {"library_threads": lb["threads"],
                                   "ours_threads": ob["threads"], **ratio(a, b)}
            if cell:
                out.setdefault(name, {})[metric] = cell
    return out


# -- environment --------------------------------------------------------------------------------
def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def git_commit() -> str | None:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "softmaxreg"],
                               cwd=HERE.parent, capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{head}{' (softmaxreg/ modified)' if dirty else ''}" if head else None


def environment() -> dict:
    cpuinfo = Path("/proc/cpuinfo")
    cpu = next((line.split(":", 1)[1].strip() for line in
                (cpuinfo.read_text().splitlines() if cpuinfo.is_file() else [])
                if line.startswith("model name")), platform.processor() or platform.machine())
    return {
        "date": now(), "cpu": cpu, "cores": os.cpu_count(),
        "cores_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
        else os.cpu_count(),
        "platform": platform.platform(), "python": platform.python_version(),
        "versions": {p: version(p) for p in ("softmaxreg", "numpy", "scipy", "scikit-learn",
                                             "torch", "threadpoolctl")},
        "softmaxreg_commit": git_commit(),
        "openblas_env_unset_in_workers": {v: os.environ.get(v) for v in OPENBLAS_VARS},
        "load_average_at_start": list(os.getloadavg()),
    }


def thread_pools(results: dict) -> list[dict]:
    """The distinct BLAS/OpenMP libraries the workers reported, with their kernels."""
    seen: dict = {}
    for name in results["tasks"]:
        for lib in (lib for _, group in report.problem_groups(results, name)
                    for lib in group["libraries"].values()):
            for entry in lib["settings"].values():
                for pool in entry.get("setup", {}).get("threadpools", []):
                    key = (pool.get("internal_api"), pool.get("prefix"), pool.get("version"))
                    seen.setdefault(key, {k: pool.get(k) for k in
                                          ("user_api", "internal_api", "prefix", "version",
                                           "architecture", "threading_layer")})
    return list(seen.values())


# -- main -----------------------------------------------------------------------------------------
def clean(obj):
    """NaN and infinity as null, so the file is strict JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return obj


def save(results: dict, out: Path) -> None:
    out.write_text(json.dumps(clean(results), indent=1, allow_nan=False) + "\n")
    out.with_suffix(".md").write_text(report.render(results, source=out.name))


def problem_list(text: str) -> list[str]:
    """``mnist,sparse`` (or several arguments) as a list of known problem names."""
    names = [n for n in text.split(",") if n]
    unknown = [n for n in names if n not in problems.PROBLEMS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown problem {unknown[0]!r}; choose from "
                                         f"{', '.join(problems.PROBLEMS)}")
    return names


def parse_args(argv=None) -> tuple[Config, str | None, str | None, Path]:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=os.environ.get("SOFTMAXREG_DATA"),
                   help="MNIST folder (default $SOFTMAXREG_DATA), or 'digits' (scikit-learn's "
                        "8x8 digits, for smoke tests)")
    p.add_argument("--repeats", type=int, help="timed repetitions per library (default 5; "
                                               "--quick: 2)")
    p.add_argument("--exact-repeats", type=int,
                   help="repetitions of scikit-learn's and PyTorch's exact fits (default 3)")
    p.add_argument("--tasks", nargs="+", choices=TASKS, help=f"default: {' '.join(DEFAULT_TASKS)}")
    p.add_argument("--problems", nargs="+", type=problem_list,
                   help="data sets of the exact fits, e.g. mnist,fashion,sparse (the default)")
    p.add_argument("--fashion-data", default=os.environ.get("SOFTMAXREG_FASHION_DATA"),
                   help="Fashion-MNIST folder (default $SOFTMAXREG_FASHION_DATA)")
    p.add_argument("--libraries", nargs="+", choices=("ours", "sklearn", "torch"))
    p.add_argument("--threads", nargs="+", type=int, help="thread settings (default 1 2)")
    p.add_argument("--epochs", type=int, help="epochs of the accuracy run (default 15)")
    p.add_argument("--quick", action="store_true",
                   help="tiny sizes (3000/1000 rows), 2 repetitions: a smoke test")
    p.add_argument("--timeout", type=float, help="seconds one command may take (default 1800)")
    p.add_argument("--out", type=Path, help="results file (default results/fair.json; "
                                            "--quick: results/quick/fair.json)")
    args = p.parse_args(argv)
    given = {k: v for k, v in dict(repeats=args.repeats, exact_repeats=args.exact_repeats,
                                     epochs=args.epochs, timeout=args.timeout).items()
             if v is not None}
    for name in ("tasks", "libraries", "threads"):
        if getattr(args, name):
            given[name] = tuple(getattr(args, name))
    if args.problems:
        given["problems"] = tuple(dict.fromkeys(n for names in args.problems for n in names))
    cfg = Config.quick_run(**given) if args.quick else Config(**given)
    data = args.data or ("digits" if args.quick else None)
    if data is None and needs_mnist(cfg):
        p.error("no data: give --data DIR (MNIST) or set SOFTMAXREG_DATA")
    out = args.out or HERE / "results" / ("quick" if args.quick else "") / "fair.json"
    return cfg, data, args.fashion_data, out


def plan(cfg: Config) -> list[tuple[str, list[str], tuple[int, ...]]]:
    """(task, libraries, thread settings) in the order they run; torch only where installed."""
    have = set(cfg.libraries)
    if importlib.util.find_spec("torch") is None:
        have.discard("torch")
    groups = []
    for task in cfg.tasks:
        libs = [lib for lib in LIBRARIES[task] if lib in have]
        threads = (max(cfg.threads),) if task == "accuracy" else cfg.threads
        if libs:
            groups.append((task, libs, threads))
    return groups


def measure_task(run: Run, task: str, libs: list[str], threads: tuple[int, ...],
                 failures: list[str]) -> dict:
    """One task on one problem, thread setting by thread setting, summarised."""
    settings, elapsed = {lib: {} for lib in libs}, {}
    for t in threads:
        group_start = time.perf_counter()
        for lib, entry in run_group(run, task, libs, t).items():
            settings[lib][str(t)] = entry
            if entry["status"] != "ok":
                failures.append(f"{run.tag(task)}/{lib} at {t} thread(s): {entry['error']}")
        elapsed[str(t)] = time.perf_counter() - group_start
        say(f"[{run.tag(task)} · {t}] {elapsed[str(t)]:.1f} s")
    libraries = {lib: {"settings": s} for lib, s in settings.items()}
    return {"elapsed_seconds": elapsed, "libraries": libraries,
            "speedup_of_ours": summarize_task(task, libraries, threads)}


def measure(cfg: Config, runs: dict[str, Run], results: dict, out: Path) -> None:
    """Every task of the plan, the exact fits on every problem of ``cfg`` in ``runs`` (the
    others on MNIST); the file is saved after each."""
    for task, libs, threads in plan(cfg):
        if task in EXACT_TASKS:
            results["tasks"][task] = {"problems": {
                name: measure_task(run, task, libs, threads, results["failures"])
                for name, run in runs.items() if name in cfg.problems}}
        else:
            results["tasks"][task] = measure_task(runs["mnist"], task, libs, threads,
                                                  results["failures"])
        results["environment"]["thread_pools"] = thread_pools(results)
        save(results, out)


def resolve_runs(run: Run, prepared: dict, work: Path) -> dict[str, Run]:
    """A run per measured problem, its f* resolved (f* only where a task needs it)."""
    tasks, runs = run.cfg.tasks, {}
    for name, problem in prepared.items():
        if "data" not in problem:
            continue
        runs[name] = run.for_problem(name, work / name, math.nan)
        exact = name in run.cfg.problems and any(t in EXACT_TASKS for t in tasks)
        if exact or (name == "mnist" and "defaults" in tasks):
            problem["f_star"] = resolve_f_star(runs[name], problem["data"], f_star_cache(name))
            runs[name].f_star = problem["f_star"]["value"]
    return runs


def main(argv=None) -> int:
    cfg, source, fashion, out = parse_args(argv)
    log_dir = out.parent / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    results: dict = {"schema": SCHEMA, "environment": environment(),
                     "config": {**asdict(cfg), "targets": TARGETS}, "tasks": {}, "failures": []}
    if "torch" in cfg.libraries and importlib.util.find_spec("torch") is None:
        results["failures"].append("torch: not installed (pip install -e '.[bench]'), left out")
    with tempfile.TemporaryDirectory(prefix="softmaxreg-bench-") as tmp:
        work = Path(tmp)
        results["problems"] = prepare_data(source, fashion, cfg, work, out.parent / "cache")
        runs = resolve_runs(Run(cfg, work, log_dir), results["problems"], work)
        if "mnist" in runs:  # the data of the tasks other than the exact fits, as before
            results["data"] = results["problems"]["mnist"]["data"]
            if "f_star" in results["problems"]["mnist"]:
                results["f_star"] = results["problems"]["mnist"]["f_star"]
        if runs:
            measure(cfg, runs, results, out)
    results["environment"]["load_average_at_end"] = list(os.getloadavg())
    results["elapsed_seconds"] = time.perf_counter() - started
    save(results, out)
    print(out.with_suffix(".md").read_text())
    say(f"wrote {out} and {out.with_suffix('.md')}")
    for failure in results["failures"]:
        say(f"FAILED: {failure}")
    measured = any(e.get("runs") for name in results["tasks"]
                   for _, group in report.problem_groups(results, name)
                   for lib in group["libraries"].values() for e in lib["settings"].values())
    return 0 if measured else 1


if __name__ == "__main__":
    sys.exit(main())
