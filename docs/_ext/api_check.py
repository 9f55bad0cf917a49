"""The API reference: fail the build when it misses a name of ``softmaxreg.__all__``, and read
the docstrings as the plain text with equations that they are.

The reference (``api/index.rst``) groups the public names by topic in autosummary tables; a
name added to ``__all__`` and not to a table would otherwise go undocumented in silence.

The docstrings write norms and batch sizes with bars (``‖W‖``, ``|B|``), which reStructuredText
would read as substitution references: bars outside literals are escaped before parsing.
"""

from __future__ import annotations

import re
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)
_LITERAL = re.compile(r"(``.+?``)")
_ENTRY = re.compile(r"^\s{3,}~?(softmaxreg\.)?([A-Za-z_][A-Za-z0-9_]*)\s*$")


def _listed(page: Path) -> set[str]:
    names, inside = set(), False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith(".. autosummary::"):
            inside = True
            continue
        if inside and line and not line[0].isspace():
            inside = False
        match = _ENTRY.match(line) if inside else None
        if match and not line.strip().startswith(":"):
            names.add(match.group(2))
    return names


def _check(app: Sphinx) -> None:
    import softmaxreg

    page = Path(app.srcdir) / "api" / "index.rst"
    listed = _listed(page)
    missing = sorted(set(softmaxreg.__all__) - listed)
    extra = sorted(listed - set(softmaxreg.__all__))
    if missing:
        logger.warning("api/index.rst does not document %s, listed in softmaxreg.__all__: "
                       "add each to one of its tables", ", ".join(missing), location="api/index")
    if extra:
        logger.warning("api/index.rst documents %s, not in softmaxreg.__all__",
                       ", ".join(extra), location="api/index")


def _escape_bars(app, what, name, obj, options, lines: list[str]) -> None:
    for i, line in enumerate(lines):
        parts = _LITERAL.split(line)  # odd items are ``literals``, left as they are
        lines[i] = "".join(p if k % 2 else p.replace("|", "\\|") for k, p in enumerate(parts))


def _skip_foreign(app, what, name, obj, skip, options):
    """Members that scikit-learn's base classes add (metadata routing's ``set_*_request``) are
    scikit-learn's to document, not ours."""
    module = getattr(obj, "__module__", None) or ""
    if re.fullmatch(r"set_\w+_request", name) or module.startswith("sklearn"):
        return True
    return None


def setup(app: Sphinx) -> dict:
    app.connect("builder-inited", _check)
    app.connect("autodoc-process-docstring", _escape_bars, priority=400)
    app.connect("autodoc-skip-member", _skip_foreign)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
