"""An automated accessibility check of the page a Selenium driver shows, with axe-core.

axe-core (Deque Systems, MPL-2.0) is vendored as tests/support/vendor/axe.min.js (see the README
next to it): nothing is downloaded. `axe_violations` injects it into the current page and runs it
on the whole document; `format_violations` turns what it reports into one line per violation, so
`assert not violations, format_violations(violations)` explains itself when it fails.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

AXE_JS = Path(__file__).resolve().parent / "vendor" / "axe.min.js"
# WCAG 2.0 and 2.1, levels A and AA, and Deque's best practices.
DEFAULT_TAGS = ("wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice")
# How long one axe run may take in the browser (seconds); the admin pages are small.
AXE_TIMEOUT_S = 30
# How many of a violation's elements `format_violations` names.
TARGETS_SHOWN = 3

_RUN = """
const [tags, rules, done] = arguments;
const options = {runOnly: {type: 'tag', values: tags}, resultTypes: ['violations']};
if (rules) { options.rules = rules; }
axe.run(document, options).then(
  (results) => done({violations: results.violations}),
  (error) => done({error: String(error)}),
);
"""


@cache
def axe_source() -> str:
    """The vendored axe-core script."""
    return AXE_JS.read_text(encoding="utf-8")


def axe_violations(
    driver: Any,
    *,
    tags: Sequence[str] = DEFAULT_TAGS,
    disabled_rules: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """Run axe-core on the page `driver` shows and return its violations (axe's own dicts: `id`,
    `impact`, `help`, `helpUrl`, `nodes` with each element's `target` selectors and `failureSummary`).

    `tags` picks the rule sets (WCAG 2.0/2.1 A and AA plus best practices by default);
    `disabled_rules` turns single rules off by id, for a page that needs a documented exception.
    The script is injected on every call, so this works after any navigation.
    """
    driver.execute_script(axe_source())
    rules = {rule: {"enabled": False} for rule in disabled_rules} or None
    before = driver.timeouts.script
    driver.set_script_timeout(AXE_TIMEOUT_S)
    try:
        result = driver.execute_async_script(_RUN, list(tags), rules)
    finally:
        driver.set_script_timeout(before)
    if "error" in result:
        raise RuntimeError(f"axe-core failed on {driver.current_url}: {result['error']}")
    return result["violations"]


def format_violations(violations: Iterable[dict[str, Any]], *, url: str = "") -> str:
    """One line per violation: rule id, impact, what it asks for, how many elements and the first
    few of their selectors; `url`, when given, heads the text."""
    lines = [f"axe-core violations on {url}:"] if url else []
    for v in violations:
        targets = [" ".join(map(str, node.get("target", []))) for node in v.get("nodes", [])]
        shown = ", ".join(targets[:TARGETS_SHOWN]) + (
            f", … ({len(targets)} in all)" if len(targets) > TARGETS_SHOWN else ""
        )
        lines.append(f"- {v.get('id')} [{v.get('impact')}]: {v.get('help')} — {shown}")
    return "\n".join(lines)
