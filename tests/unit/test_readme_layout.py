"""README's Layout is a map a newcomer can trust: each row names a directory and exactly what `ls`
shows in it (Python modules and sub-packages), and every package of the product has its row."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROOTS = ("worker", "webhooks", "sequences", "blocks", "bench")
ROW = re.compile(r"^\| `(?P<dir>[\w/]+/)` \| (?P<contents>[^|]*) \|(?P<what>.*)\|$")


def layout_rows() -> dict[str, set[str]]:
    """The Layout section's rows: directory -> the names its contents cell lists."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        m = ROW.match(line)
        if m:
            rows[m["dir"]] = set(re.findall(r"`([^`]+)`", m["contents"]))
    return rows


def listing(directory: Path) -> set[str]:
    """What `ls` shows that a reader needs: modules (not `__init__.py`) and packages (with a slash)."""
    names = set()
    for entry in directory.iterdir():
        if entry.name.startswith((".", "__")):
            continue
        if entry.is_dir() and (entry / "__init__.py").exists():
            names.add(entry.name + "/")
        elif entry.suffix == ".py":
            names.add(entry.name)
    return names


def packages() -> list[str]:
    """Every package directory of the product, as `worker/engine/`."""
    found = []
    for root in ROOTS:
        for init in sorted((REPO / root).rglob("__init__.py")):
            found.append(init.parent.relative_to(REPO).as_posix() + "/")
    return found


def test_every_package_has_its_row_in_the_layout():
    rows = layout_rows()
    missing = [p for p in packages() if p not in rows]
    assert not missing, f"README.md ## Layout has no row for {missing}"


def test_each_row_lists_exactly_what_ls_shows():
    wrong = {}
    for directory, listed in layout_rows().items():
        actual = listing(REPO / directory)
        if listed != actual:
            wrong[directory] = {"only in README": sorted(listed - actual), "only on disk": sorted(actual - listed)}
    assert not wrong, f"README.md ## Layout differs from the tree: {wrong}"
