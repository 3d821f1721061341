"""The reference docs in docs/ against the code they describe, and the repository against references
to documents it does not carry.

- docs/sequences.md lists every step of every registered sequence, under that sequence's heading,
  and no step the code does not have;
- docs/events.md lists every payload field of every event type, and no field the models lack;
- docs/configuration.md names every environment variable the settings object reads;
- every relative link in README.md and docs/*.md points to a file (and heading) that exists;
- no tracked text file cites section numbers or documents from outside the repository.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from worker.config import Settings
from worker.engine import registry
from worker.engine.payloads import PAYLOAD_MODELS

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
LINKED_PAGES = [REPO / "README.md", *sorted(DOCS.glob("*.md"))]

# A citation of a document that is not in the repository: a section sign, the names of the team's
# own planning documents, or a path into the folder that holds them.
OUTSIDE_REFERENCE = re.compile(
    r"§|\b(?:SPEC|DESIGN|STYLE)\b(?:\.md)?(?=[\s.,;:)/]|$)|\.\./shared|/work/shared|\bshared/real-payloads"
)
BINARY_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".ico", ".pdf", ".gz", ".zip", ".whl", ".db", ".sqlite"}
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^\s*(```|~~~)")


def sections(markdown: str, level: int) -> dict[str, str]:
    """Text under each heading of `level` (up to the next heading of that level or above), keyed by
    the heading's text without backticks."""
    out: dict[str, list[str]] = {}
    current: str | None = None
    for line in markdown.splitlines():
        m = HEADING.match(line)
        if m and len(m.group(1)) <= level:
            current = m.group(2).strip("` ") if len(m.group(1)) == level else None
            if current is not None:
                out[current] = []
            continue
        if current is not None:
            out[current].append(line)
    return {k: "\n".join(v) for k, v in out.items()}


def table_names(text: str) -> set[str]:
    """The backticked names in the first column of the markdown tables in `text`."""
    names = set()
    for line in text.splitlines():
        m = re.match(r"^\|\s*`([^`]+)`\s*\|", line)
        if m:
            names.add(m.group(1))
    return names


# --------------------------------------------------------------------------- sequences.md


def step_rows(text: str) -> dict[str, tuple[str, set[str]]]:
    """Step tables in `text`: step name -> (critical | best-effort, its deps)."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        m = re.fullmatch(r"`([^`]+)`", cells[0]) if len(cells) >= 4 else None
        if m:
            kind = "critical" if cells[1].startswith("critical") else cells[1].split(",")[0].strip()
            deps = {d.strip() for d in cells[2].split(",")} - {"\u2013", "-", ""}  # an en dash marks "no deps"
            rows[m.group(1)] = (kind, deps)
    return rows


def test_sequences_doc_lists_exactly_the_steps_of_each_sequence():
    doc = sections((DOCS / "sequences.md").read_text(), 2)
    for event_type, sequence in registry.registered().items():
        assert event_type in doc, f"docs/sequences.md has no '## {event_type}' section"
        documented = step_rows(doc[event_type])
        in_code = set(sequence.order)
        assert in_code - set(documented) == set(), f"{event_type}: steps missing from docs/sequences.md"
        assert set(documented) - in_code == set(), f"{event_type}: docs/sequences.md lists steps the code lacks"
        for name, (kind, deps) in documented.items():
            step = sequence.step(name)
            assert kind == ("critical" if step.critical else "best-effort"), f"{event_type}/{name}: {kind}?"
            assert deps == set(step.deps), f"{event_type}/{name}: docs/sequences.md says deps {sorted(deps)}"


# --------------------------------------------------------------------------- events.md


def test_events_doc_lists_exactly_the_payload_fields_of_each_type():
    doc = sections((DOCS / "events.md").read_text(), 3)
    for event_type, model in PAYLOAD_MODELS.items():
        assert event_type in doc, f"docs/events.md has no '### {event_type}' section"
        documented = table_names(doc[event_type])
        fields = set(model.model_fields)
        assert fields - documented == set(), f"{event_type}: payload fields missing from docs/events.md"
        assert documented - fields == set(), f"{event_type}: docs/events.md lists fields the payload lacks"


# --------------------------------------------------------------------------- configuration.md


def test_configuration_doc_names_every_setting():
    doc = (DOCS / "configuration.md").read_text()
    names = {(field.alias or name).upper() for name, field in Settings.model_fields.items()}
    missing = sorted(n for n in names if f"`{n}`" not in doc)
    assert missing == [], f"docs/configuration.md does not describe {missing}"


# --------------------------------------------------------------------------- links


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lowercase, punctuation dropped, spaces to hyphens."""
    text = heading.replace("`", "").strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    fenced = False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        m = HEADING.match(line)
        if m and not fenced:
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
    return out


def links(path: Path) -> list[str]:
    found, fenced = [], False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            found.extend(LINK.findall(line))
    return found


@pytest.mark.parametrize("page", LINKED_PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_relative_links_point_to_existing_files_and_headings(page: Path):
    broken = []
    for target in links(page):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: ...
            continue
        file_part, _, anchor = target.partition("#")
        dest = (page.parent / file_part).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            broken.append(f"{target} (no such heading)")
    assert broken == [], f"{page.relative_to(REPO)}: broken links {broken}"


# --------------------------------------------------------------------------- outside references


def tracked_text_files() -> list[Path]:
    """The repository's tracked files (every file outside .git/.venv when git is not available)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=30
        ).stdout.decode()
        paths = [REPO / p for p in out.split("\0") if p]
    except (OSError, subprocess.SubprocessError):
        skip = {".git", ".venv", ".proactive", "__pycache__"}
        paths = [p for p in REPO.rglob("*") if p.is_file() and not skip & set(p.relative_to(REPO).parts)]
    return [p for p in paths if p.suffix not in BINARY_SUFFIXES and p.is_file()]


def test_no_file_refers_to_documents_outside_the_repository():
    me = Path(__file__).resolve()
    hits = []
    for path in tracked_text_files():
        if path.resolve() == me:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), start=1):
            if OUTSIDE_REFERENCE.search(line):
                hits.append(f"{path.relative_to(REPO)}:{number}: {line.strip()[:120]}")
    assert hits == [], "cite docs/ (or nothing) instead:\n" + "\n".join(hits)
