"""README result blocks: text between ``<!-- report:NAME -->`` and ``<!-- /report:NAME -->`` markers.

    update_markdown(["projects/dqn/README.md", "projects/dqn/REPORT.md"], {"cartpole": table})
    write_headline("README.md", "dqn", "CartPole-v1: 5/5 seeds solve ...")

A block that no file has is an error, never a silent no-op: a renamed marker would otherwise leave
a stale table in place.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path


def _pattern(name: str) -> re.Pattern:
    n = re.escape(name)
    return re.compile(rf"(<!-- report:{n} -->\n).*?(<!-- /report:{n} -->)", re.S)


def replace_block(text: str, name: str, content: str) -> str:
    """``text`` with block ``name`` replaced by ``content``; ``ValueError`` if the markers are missing."""
    pattern = _pattern(name)
    if not pattern.search(text):
        raise ValueError(f"no <!-- report:{name} --> ... <!-- /report:{name} --> block")
    return pattern.sub(lambda m: m.group(1) + content.rstrip("\n") + "\n" + m.group(2), text)


def has_block(text: str, name: str) -> bool:
    return _pattern(name).search(text) is not None


def update_markdown(paths: Iterable[str | Path], blocks: Mapping[str, str]) -> dict[str, list[str]]:
    """Write every block into each of ``paths`` that has its markers; each block must land somewhere.

    Returns ``{path: [block names written]}``. Files are read and checked first, then written, so
    a missing block leaves every file as it was.
    """
    texts = {Path(p): Path(p).read_text() for p in paths}
    nowhere = [n for n in blocks if not any(has_block(t, n) for t in texts.values())]
    if nowhere:
        files = ", ".join(map(str, texts)) or "no files"
        raise ValueError(f"report blocks with no markers in {files}: {', '.join(nowhere)}")
    written: dict[str, list[str]] = {}
    for path, text in texts.items():
        names = [n for n in blocks if has_block(text, n)]
        for n in names:
            text = replace_block(text, n, blocks[n])
        if names:
            path.write_text(text)
        written[str(path)] = names
    return written


def write_headline(index: str | Path, name: str, line: str) -> None:
    """Set the ``<!-- headline:NAME -->`` cell of the top-level README's table to ``line``."""
    index = Path(index)
    cell = " ".join(line.replace("|", "/").split())  # one table cell: no pipes, no newlines
    text, n = re.subn(
        rf"<!-- headline:{re.escape(name)} -->[^|\n]*", lambda m: f"<!-- headline:{name} --> {cell} ", index.read_text()
    )
    if n != 1:
        raise ValueError(f"{index} has {n} <!-- headline:{name} --> cells, expected one")
    index.write_text(text)
