"""ARCHITECTURE.md's dependency table is the law the imports obey: every top-level part of
the package has a row, and every import between parts (module-level or lazy) is one the
table allows. A new part or a new direction is a change to the table, reviewed as such."""

from __future__ import annotations

import re
from pathlib import Path

from test_architecture import MODULES, PACKAGE, _internal

DOC = Path(__file__).resolve().parents[1] / "ARCHITECTURE.md"
#: A row of the table: | `part` | `a`, `b` | (or "every part").
ROW = re.compile(r"^\|\s*`(?P<part>[\w]+)`\s*\|(?P<allowed>[^|]*)\|\s*$")
EVERY = "every part"


def _table() -> dict[str, set[str] | None]:
    """Part -> the parts it may import (None: any)."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## The dependency table", 1)[1].split("\n## ", 1)[0]
    table: dict[str, set[str] | None] = {}
    for line in section.splitlines():
        m = ROW.match(line.strip())
        if m:
            allowed = m["allowed"].strip()
            table[m["part"]] = None if allowed == EVERY else set(re.findall(r"`(\w+)`", allowed))
    return table


def _part(module: str) -> str:
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


TABLE = _table()


def test_the_table_is_read() -> None:
    assert {"tracking", "server", "client", "cli"} <= set(TABLE)
    assert TABLE["tracking"] == set()
    assert TABLE["cli"] is None


def test_every_part_has_a_row() -> None:
    parts = {_part(m) for m in MODULES}
    missing = sorted(parts - set(TABLE))
    assert not missing, f"ARCHITECTURE.md's dependency table has no row for: {missing}"


def test_imports_follow_the_table() -> None:
    bad = []
    for module in MODULES:
        source = _part(module)
        allowed = TABLE.get(source, set())
        if allowed is None:
            continue
        for edge in _internal(module):
            target = _part(edge.target)
            if target != source and target not in allowed:
                bad.append(f"{module} -> {edge.target}   [{edge.where()}]")
    assert not bad, (
        f"imports between parts of {PACKAGE} that ARCHITECTURE.md's dependency table does "
        "not allow (move the code, or change the table on purpose):\n" + "\n".join(bad)
    )
