"""Code on the user-guide pages, run while the site is built: what a reader sees is what it does.

Two directives:

``.. softmaxreg-command:: ARGS``
    runs ``softmaxreg.cli.main(ARGS)`` in this process and shows ``$ softmaxreg ARGS`` with what
    the command printed (stdout and stderr, in order).  ``:returncode: N`` states the exit
    status the page expects (default 0); any other status fails the build.

``.. softmaxreg-python::``
    runs its content as Python and shows the code and what it printed.  ``:hide-code:`` shows
    only the output; ``:output: rst`` parses the printed text as reStructuredText (tables and
    figures generated at build time), ``:output: none`` shows nothing of it.  An exception
    fails the build.

Both run in a working folder of their own per page (a fresh temporary directory, so a page
can train a model with one command and evaluate it with the next), and the Python blocks of
one page share their variables, in page order.
"""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import shutil
import tempfile
import traceback
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective

_COLUMNS = "96"  # argparse wraps --help to the terminal width; pages get a fixed one


class _PageState:
    """The working folder and the Python namespace that one page's blocks share."""

    def __init__(self, docname: str, srcdir: Path):
        self.folder = Path(tempfile.mkdtemp(prefix="softmaxreg-docs-"))
        self.namespace: dict = {
            "__name__": f"docs.{docname.replace('/', '.')}",
            "DOCS_SOURCE": srcdir / Path(docname).parent,  # where generated figures go
        }


def _page(directive: SphinxDirective) -> _PageState:
    pages = directive.env.app._softmaxreg_pages  # one state per page, for this build
    docname = directive.env.docname
    if docname not in pages:
        pages[docname] = _PageState(docname, Path(directive.env.srcdir))
    return pages[docname]


@contextlib.contextmanager
def _captured(folder: Path):
    """Run in ``folder`` with stdout and stderr going to one buffer, as on a terminal."""
    buffer, old_cwd, old_columns = io.StringIO(), os.getcwd(), os.environ.get("COLUMNS")
    os.chdir(folder)
    os.environ["COLUMNS"] = _COLUMNS
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(buffer):
            yield buffer
    finally:
        os.chdir(old_cwd)
        if old_columns is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old_columns


def _literal(text: str, language: str) -> nodes.literal_block:
    block = nodes.literal_block(text, text)
    block["language"] = language
    return block


class CommandDirective(SphinxDirective):
    """``$ softmaxreg ARGS`` and its real output."""

    required_arguments = 1
    final_argument_whitespace = True
    option_spec = {"returncode": directives.nonnegative_int}

    def run(self) -> list[nodes.Node]:
        from softmaxreg.cli import main

        argv = shlex.split(self.arguments[0])
        expected = self.options.get("returncode", 0)
        state = _page(self)
        with _captured(state.folder) as out:
            try:
                status = main(argv)
            except SystemExit as exc:  # --help and usage errors exit through argparse
                status = exc.code if isinstance(exc.code, int) else 1
            except Exception:  # noqa: BLE001 - any crash must fail the page, with its traceback
                raise self.error(f"softmaxreg {self.arguments[0]} raised:\n"
                                 f"{traceback.format_exc()}") from None
        if status != expected:
            raise self.error(f"softmaxreg {self.arguments[0]} exited with status {status}, "
                             f"the page expects {expected}:\n{out.getvalue()}")
        text = f"$ softmaxreg {self.arguments[0]}\n{out.getvalue().rstrip()}"
        if expected:
            text += f"\n$ echo $?\n{status}"
        return [_literal(text, "console")]


class PythonDirective(SphinxDirective):
    """Python code run at build time, with what it printed."""

    has_content = True
    option_spec = {
        "hide-code": directives.flag,
        "output": lambda value: directives.choice(value, ("text", "rst", "none")),
    }

    def run(self) -> list[nodes.Node]:
        code = "\n".join(self.content)
        state = _page(self)
        with _captured(state.folder) as out:
            try:
                exec(compile(code, f"<{self.env.docname}>", "exec"), state.namespace)  # noqa: S102
            except Exception:  # noqa: BLE001 - the page fails with the traceback
                raise self.error(f"a Python block of {self.env.docname} raised:\n"
                                 f"{traceback.format_exc()}\n{out.getvalue()}") from None
        result: list[nodes.Node] = []
        if "hide-code" not in self.options:
            result.append(_literal(code, "python"))
        printed = out.getvalue().rstrip()
        mode = self.options.get("output", "text")
        if printed and mode == "text":
            result.append(_literal(printed, "text"))
        elif printed and mode == "rst":
            container = nodes.container()
            self.state.nested_parse(StringList(printed.splitlines(), self.env.docname),
                                    self.content_offset, container)
            result.extend(container.children)
        return result


def _start(app: Sphinx) -> None:
    app._softmaxreg_pages = {}


def _clean(app: Sphinx, exception) -> None:
    for state in app._softmaxreg_pages.values():
        shutil.rmtree(state.folder, ignore_errors=True)


def setup(app: Sphinx) -> dict:
    app.add_directive("softmaxreg-command", CommandDirective)
    app.add_directive("softmaxreg-python", PythonDirective)
    app.connect("builder-inited", _start)
    app.connect("build-finished", _clean)
    return {"parallel_read_safe": False, "parallel_write_safe": True}
