"""The performance tables, in markdown, from a results file of ``fair.py``.

    python benchmarks/report.py                                  # results/fair.json -> fair.md
    python benchmarks/report.py results.json --out table.md
    python benchmarks/report.py --readme README.md               # also replace the README block

With ``--readme`` the text between the lines ``<!-- perf-table:start -->`` and
``<!-- perf-table:end -->`` is replaced; nothing else in the file changes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
START, END = "<!-- perf-table:start -->", "<!-- perf-table:end -->"

LABELS = {
    "exact": {"ours": "softmaxreg `SoftmaxRegression(C=1)`",
              "sklearn": 'scikit-learn `LogisticRegression(solver="lbfgs")`',
              "torch": "PyTorch `torch.optim.LBFGS`"},
    "defaults": {"ours": "softmaxreg `SoftmaxRegression()`",
                 "sklearn": "scikit-learn `LogisticRegression()`"},
    "epoch": {"ours": "softmaxreg `SoftmaxNetwork`", "torch": "PyTorch loop",
              "sklearn": "scikit-learn `MLPClassifier`"},
    "accuracy": {"ours": "softmaxreg", "torch": "PyTorch"},
    "predict": {"ours": "softmaxreg", "torch": "PyTorch (`inference_mode`)",
                "sklearn": "scikit-learn"},
}
LABELS["exact64"] = LABELS["exact"]
LIBRARY_NAMES = {"ours": "softmaxreg", "sklearn": "scikit-learn", "torch": "PyTorch"}
# the data of each problem, by its source (results["problems"][name]["data"]["source"])
TITLES = {"mnist": "MNIST", "digits": "scikit-learn's digits (smoke test)",
          "fashion": "Fashion-MNIST", "20newsgroups": "20 newsgroups TF-IDF",
          "synthetic": "synthetic corpus shaped like 20 newsgroups"}


# -- the layout of a results file ------------------------------------------------------------------
def problem_groups(results: dict, name: str) -> list[tuple[str, dict]]:
    """[(problem, group)] of a task: the exact fits hold a group per problem, the other tasks
    (and the exact fits of files written before there were problems) one group, MNIST's."""
    task = results["tasks"][name]
    if "problems" in task:
        return list(task["problems"].items())
    return [("mnist", task)]


def problem_data(results: dict, problem: str) -> tuple[dict, dict]:
    """(data, f*) of a problem; a file without problems describes MNIST in its top level."""
    entry = results.get("problems", {}).get(problem)
    if entry is None:
        return results.get("data", {}), results.get("f_star", {})
    return entry.get("data", {}), entry.get("f_star", {})


# -- numbers ------------------------------------------------------------------------------------
def seconds(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "—"
    if x >= 10:
        return f"{x:.1f} s"
    if x >= 0.1:
        return f"{x:.3g} s"
    return f"{x * 1e3:.3g} ms"


def time_cell(s: dict | None) -> str:
    if not s or not s.get("n"):
        return "—"
    if s["n"] == 1:
        return seconds(s["median"])
    unit = seconds(s["median"]).split()[1]
    scale = 1 if unit == "s" else 1e3
    return f"{seconds(s['median'])} ({s['min'] * scale:.3g}–{s['max'] * scale:.3g})"


def rate(x: float) -> str:
    for size, suffix in ((1e6, " M"), (1e3, " k")):
        if x >= size:
            return f"{x / size:.3g}{suffix}"
    return f"{x:.3g}"


def rate_cell(s: dict | None, rows: int) -> str:
    if not s or not s.get("n"):
        return "—"
    return f"{rate(rows / s['median'])} rows/s ({rate(rows / s['max'])}–{rate(rows / s['min'])})"


def speedup_cell(cell: dict | None) -> str:
    if not cell:
        return "—"
    text = f"{cell['median']:.2f}× ({cell['low']:.2f}–{cell['high']:.2f})"
    if "library_threads" in cell:
        text += f" [{cell['library_threads']} vs {cell['ours_threads']}]"
    return text


def n_threads(n) -> str:
    return f"{n} thread{'' if str(n) == '1' else 's'}"


def target_cell(value: float | None, reached: dict | None = None) -> str:
    """Issue 14's target for the speed-up of ours at each one's best, and whether the median
    met it."""
    if not value:
        return ""
    verdict = "" if not reached else (" met" if reached["median"] >= value else " **missed**")
    return f"≥ {value:.3g}×{verdict}"


# -- pieces of the tables -------------------------------------------------------------------------
class Task:
    """One task of the results, with the helpers every table needs."""

    def __init__(self, results: dict, name: str, group: dict | None = None,
                 problem: str = "mnist"):
        self.name, self.results, self.problem = name, results, problem
        self.task = results["tasks"][name] if group is None else group
        self.threads = str(max(results["config"]["threads"]))
        self.libraries = self.task["libraries"]

    def entry(self, lib: str, threads: str | None = None) -> dict:
        return self.libraries[lib]["settings"].get(threads or self.threads, {})

    def best_entry(self, lib: str, metric: str = "seconds") -> tuple[dict, int | None]:
        best = (self.libraries[lib].get("best") or {}).get(metric)
        if not best:
            return {}, None
        return self.entry(lib, str(best["threads"])), best["threads"]

    def summary(self, lib: str, metric: str = "seconds", best: bool = False) -> dict | None:
        entry = self.best_entry(lib, metric)[0] if best else self.entry(lib)
        return entry.get("summary", {}).get(metric)

    def failed(self, lib: str) -> str | None:
        errors = [f"{t} thread(s): {e['error']}" for t, e in
                  self.libraries[lib]["settings"].items() if e.get("status") != "ok"]
        return "; ".join(errors) or None

    def speedup(self, lib: str, metric: str, where: str) -> dict | None:
        return self.task.get("speedup_of_ours", {}).get(lib, {}).get(metric, {}).get(where)

    def target(self, lib: str) -> float | None:
        """Issue 14's targets were set on MNIST: the other problems' tables show none."""
        if self.problem != "mnist":
            return None
        return self.results["config"].get("targets", {}).get(self.name, {}).get(lib)


def with_threads(text: str, threads: int | None) -> str:
    return f"{text}, {n_threads(threads)}" if threads is not None and text != "—" else text


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


# -- the sections ---------------------------------------------------------------------------------
def exact_sections(results: dict, name: str, notes: list[str]) -> list[str]:
    """A table per problem measured, a line per problem that was not."""
    lines = []
    for problem, group in problem_groups(results, name):
        lines += exact_section(results, name, problem, group, notes)
    for problem, entry in results.get("problems", {}).items():
        if "not_measured" in entry:
            title = TITLES.get(problem, problem)
            lines += [f"**Exact fit — {title}**: not measured: {entry['not_measured']}.", ""]
    return lines


def problem_title(data: dict, problem: str) -> str:
    """``MNIST, 60000 × 784, float32 in [0, 1]``; sparse data with its non-zeros and CSR."""
    title = TITLES.get(data.get("source"), TITLES.get(problem, problem))
    if not data:
        return title
    shape = f"{data['n_train']} × {data['n_features']}"
    if data.get("sparse"):
        return (f"{title}, {shape}, {data['n_classes']} classes, {data['nnz'] / 1e6:.2f} M "
                f"non-zeros, CSR {data['dtype']} ({data['scaled']})")
    return f"{title}, {shape}, {data['dtype']} in {data['scaled']}"


def exact_section(results: dict, name: str, problem: str, group: dict,
                  notes: list[str]) -> list[str]:
    t = Task(results, name, group, problem)
    dtype = "float64" if name == "exact64" else "float32"
    data, f_star = problem_data(results, problem)
    f_star = f_star.get("value")
    sparse = " CSR (PyTorch: a sparse CSR tensor)" if data.get("sparse") else ""
    lines = [f"**Exact fit — {problem_title(data, problem)}** — softmax regression, C = 1, "
             f"timed until the objective is within {results['config']['gap']:g} (relative) "
             f"of f* = {f_star:.6f}; X {dtype}{sparse}.", ""]
    rows = []
    for lib in t.libraries:
        label = LABELS[name][lib]
        dtypes = {r.get("dtype") for r in t.entry(lib).get("runs", [])} - {None}
        probes = [(th, e["warmup"]["float32_probe"]) for th, e in
                  t.libraries[lib]["settings"].items() if (e.get("warmup") or {}).get(
                      "float32_probe")]
        if dtypes and dtypes != {dtype}:
            label += f", {'/'.join(sorted(dtypes))}"
        if probes:
            label += " ¹"
            th, probe = probes[0]
            notes.append(f"¹ In float32, PyTorch's L-BFGS stopped ({probe['stop']}) at a gap of "
                         f"{probe['gap']:.1e} after {probe['evaluations']} evaluations "
                         f"({seconds(probe['seconds'])}, {n_threads(th)}); its times are "
                         "in float64, where it reaches the gap.")
        rows.append(exact_row(t, lib, label))
    header = ["library", n_threads(t.threads), "best", "work", "speed-up of ours, "
              + n_threads(t.threads), "at each one's best", "target"]
    return lines + table(header, rows) + [""]


def exact_row(t: Task, lib: str, label: str) -> list[str]:
    if t.failed(lib) and not t.summary(lib, best=True):
        return [label, "failed", "", "", "", "", ""]
    entry = t.entry(lib)
    s = entry.get("summary", {})
    runs = entry.get("runs") or [{}]
    work = (f"{s['evaluations']['median']:.0f} evaluations" if "evaluations" in s else
            f"{s['iterations']['median']:.0f} iterations" if "iterations" in s else "")
    cell = time_cell(s.get("seconds"))
    if s.get("reached", len(runs)) < len(entry.get("runs", [])):
        cell += f" — gap not reached ({runs[-1].get('gap', math.nan):.1e}, {runs[-1].get('stop')})"
    best_entry, best_threads = t.best_entry(lib)
    best = with_threads(time_cell(best_entry.get("summary", {}).get("seconds")), best_threads)
    if lib == "ours":
        return [label, cell, best, work, "—", "—", ""]
    return [label, cell, best, work, speedup_cell(t.speedup(lib, "seconds", "at_threads")),
            speedup_cell(t.speedup(lib, "seconds", "at_best")),
            target_cell(t.target(lib), t.speedup(lib, "seconds", "at_best"))]


def defaults_section(results: dict) -> list[str]:
    t = Task(results, "defaults")
    rows = []
    for lib in t.libraries:
        s = t.entry(lib).get("summary", {})
        best_entry, best_threads = t.best_entry(lib)
        gap = s.get("gap", {}).get("median")
        rows.append([LABELS["defaults"][lib], time_cell(s.get("seconds")),
                     with_threads(time_cell(best_entry.get("summary", {}).get("seconds")),
                                  best_threads),
                     f"{gap:.1e}" if gap is not None else "—",
                     f"{s['iterations']['median']:.0f}" if "iterations" in s else "—"])
    return (["**Defaults** — each estimator as it comes, on the same data: time to stop and "
             "the gap it stopped at.", ""]
            + table(["estimator", n_threads(t.threads), "best", "gap reached", "iterations"],
                    rows) + [""])


def epoch_section(results: dict) -> list[str]:
    t = Task(results, "epoch")
    rows = []
    for lib in t.libraries:
        best_entry, best_threads = t.best_entry(lib)
        best = with_threads(time_cell(best_entry.get("summary", {}).get("seconds")), best_threads)
        row = [LABELS["epoch"][lib], time_cell(t.summary(lib)), best]
        if lib == "ours":
            row += ["—", "—", ""]
        else:
            row += [speedup_cell(t.speedup(lib, "seconds", "at_threads")),
                    speedup_cell(t.speedup(lib, "seconds", "at_best")),
                    target_cell(t.target(lib), t.speedup(lib, "seconds", "at_best"))]
        rows.append(row)
    data = results["data"]
    sizes = "-".join(map(str, (data["n_features"], 128, 64, data["n_classes"])))
    lines = [f"**Network epoch** — {sizes}, ReLU, Adam (lr 1e-3), batch 128, no penalty, "
             "float32; seconds per epoch.", ""]
    lines += table(["library", n_threads(t.threads), "best", "speed-up of ours, "
                    + n_threads(t.threads), "at each one's best", "target"], rows)
    return lines + [""] + accuracy_line(results)


def accuracy_line(results: dict) -> list[str]:
    if "accuracy" not in results["tasks"]:
        return []
    t = Task(results, "accuracy")
    parts = []
    for lib in t.libraries:
        runs = t.entry(lib).get("runs")
        if runs:
            r = runs[0]
            parts.append(f"{LABELS['accuracy'][lib]} {r['test_accuracy']:.4f} "
                         f"({seconds(r['seconds'])})")
    if not parts:
        return []
    epochs = results["config"]["epochs"]
    return [f"Test accuracy after {epochs} epochs of that training ({n_threads(t.threads)}, one "
            f"run): {', '.join(parts)}.", ""]


def predict_section(results: dict) -> list[str]:
    t = Task(results, "predict")
    rows_n = results["data"]["n_test"]
    rows = []
    for model in ("softmax", "network"):
        metric = f"{model}_seconds"
        for lib in t.libraries:
            best_entry, best_threads = t.best_entry(lib, metric)
            best = with_threads(rate_cell(best_entry.get("summary", {}).get(metric), rows_n),
                                best_threads)
            row = ["softmax regression" if model == "softmax" else "network",
                   LABELS["predict"][lib], rate_cell(t.summary(lib, metric), rows_n), best]
            if lib == "ours":
                row += ["—", "—", ""]
            else:
                row += [speedup_cell(t.speedup(lib, metric, "at_threads")),
                        speedup_cell(t.speedup(lib, metric, "at_best")),
                        target_cell(t.target(lib), t.speedup(lib, metric, "at_best"))]
            rows.append(row)
    lines = [f"**Prediction** — `predict_proba` on the {rows_n} test rows.", ""]
    return lines + table(["model", "library", n_threads(t.threads), "best",
                          f"speed-up of ours, {n_threads(t.threads)}", "at each one's best",
                          "target"], rows) + [""]


def preamble(results: dict, source: str) -> list[str]:
    env, cfg, data = results["environment"], results["config"], results.get("data")
    v = env.get("versions", {})
    names = {"numpy": "numpy", "scipy": "scipy", "scikit-learn": "scikit-learn",
             "torch": "torch"}
    versions = ", ".join(f"{n} {v[k]}" for k, n in names.items() if v.get(k))
    pools = [" ".join(filter(None, (p.get("internal_api"), p.get("version"))))
             + f" ({p.get('prefix')}"
             + (f", {p['architecture']} kernel" if p.get("architecture") else "") + ")"
             for p in env.get("thread_pools", [])]
    reps = f"{cfg['repeats']} repetitions"
    if "exact" in results["tasks"] or "exact64" in results["tasks"]:
        reps += (f" ({cfg['exact_repeats']} for the scikit-learn and PyTorch exact fits, whose "
                 f"warm-up stops after {cfg['warmup_evals']} evaluations)")
    threads = n_threads(" and ".join(str(t) for t in cfg["threads"]))
    commit = f" ({env['softmaxreg_commit']})" if env.get("softmaxreg_commit") else ""
    return [
        f"<!-- generated by benchmarks/report.py from {source}; edit the benchmark, not this -->",
        "",
        f"Measured {env['date']} on {env['cpu']} ({env['cores']} cores) with Python "
        f"{env['python']}, {versions}, softmaxreg {v.get('softmaxreg')}{commit}. "
        f"BLAS and OpenMP: {'; '.join(pools) or 'not reported'}." + data_line(data),
        "",
        f"Each library ran in a process of its own, one warm-up run discarded, then {reps}, the "
        f"order of the libraries rotated between repetitions. A cell gives the median and the "
        f"range (min–max) in brackets. Every library ran with {threads} "
        "(threadpoolctl; `torch.set_num_threads`); *best* is its faster setting. *Speed-up of "
        "ours* is the library's time ÷ ours (above 1: ours is faster), its range pairs the "
        "extremes, and [a vs b] gives the threads of each at its best.",
        "",
    ]


def data_line(data: dict | None) -> str:
    if not data:
        return ""
    dataset = TITLES.get(data["source"], data["source"])
    return (f" Data: {dataset}, {data['n_train']} × {data['n_features']} training and "
            f"{data['n_test']} test rows, {data['dtype']} in {data['scaled']}.")


def method_notes(results: dict) -> list[str]:
    notes = ["*Target*: issue 14's goal for the speed-up of ours at each one's best (the median "
             "library time ÷ ours), set on MNIST; *met* or **missed** by the median."]
    for name in ("exact", "exact64"):
        groups = problem_groups(results, name) if name in results["tasks"] else []
        for entry in (e for _, g in groups if "ours" in g["libraries"]
                      for e in g["libraries"]["ours"]["settings"].values()):
            method = (entry.get("warmup") or {}).get("method")
            if method == "smallest max_iter reaching the gap":
                notes.append("Ours is timed as a whole `fit(tol=0, max_iter=k)` with k the "
                             "fewest iterations that reach the gap (found in the warm-up, the "
                             "gap evaluated in float64 from `coef_`); scikit-learn's and "
                             "PyTorch's times stop at the first objective evaluation within "
                             "the gap, which favours them slightly.")
                return notes
    return notes


def render(results: dict, source: str = "fair.json") -> str:
    """The markdown for the tasks present in ``results``."""
    notes: list[str] = []
    lines = preamble(results, source)
    for name in ("exact", "exact64"):
        if name in results["tasks"]:
            lines += exact_sections(results, name, notes)
    if "defaults" in results["tasks"]:
        lines += defaults_section(results)
    if "epoch" in results["tasks"]:
        lines += epoch_section(results)
    elif "accuracy" in results["tasks"]:
        lines += accuracy_line(results)
    if "predict" in results["tasks"]:
        lines += predict_section(results)
    notes += method_notes(results)
    notes += [f"Failed: {f}" for f in results.get("failures", [])]
    if notes:
        lines += [n + "\n" for n in notes]
    return "\n".join(lines).rstrip() + "\n"


def replace_block(text: str, block: str) -> str:
    """``text`` with the lines between the two markers replaced by ``block``."""
    if START not in text or END not in text or text.index(START) > text.index(END):
        raise ValueError(f"the file has no block between {START!r} and {END!r}; add the two "
                         "marker lines where the table belongs")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{block.rstrip()}\n{END}{tail}"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("results", nargs="?", type=Path, default=HERE / "results" / "fair.json")
    p.add_argument("--out", type=Path, help="markdown file (default: beside the results, .md)")
    p.add_argument("--readme", type=Path,
                   help=f"also replace the block between {START} and {END} in this file")
    args = p.parse_args(argv)
    results = json.loads(args.results.read_text())
    text = render(results, source=args.results.name)
    out = args.out or args.results.with_suffix(".md")
    out.write_text(text)
    print(f"wrote {out}", file=sys.stderr)
    if args.readme:
        try:
            args.readme.write_text(replace_block(args.readme.read_text(), text))
        except ValueError as exc:
            print(f"{args.readme}: {exc}", file=sys.stderr)
            return 2
        print(f"replaced the table in {args.readme}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
