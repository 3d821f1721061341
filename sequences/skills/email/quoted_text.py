"""The new text of an email: its body without quoted replies, forwarded headers and the signature.

Pure functions (no I/O).
"""

from __future__ import annotations

import re

SIGNATURE_MAX_LINES = 8  # lines after a closing ("Best,") that can still be a signature block


_REPLY_HEADER_RES = (
    re.compile(r"^\s*on\b.{0,300}\bwrote\s*:\s*$"),
    re.compile(r"^\s*am\b.{0,300}\bschrieb\b.{0,200}:\s*$"),
    re.compile(r"^\s*le\b.{0,300}\ba écrit\s*:\s*$"),
    re.compile(r"^\s*el\b.{0,300}\bescribió\s*:\s*$"),
    re.compile(r"^.{0,300}書きました\s*[:\uff1a]\s*$"),
    re.compile(
        r"^\s*-{2,}\s*(?:original message|ursprüngliche nachricht|message d'origine|mensaje original|"
        r"forwarded message|weitergeleitete nachricht)\s*-{2,}\s*$"
    ),
    re.compile(r"^\s*_{10,}\s*$"),
)
_FROM_LINE_RE = re.compile(r"^\s*\*?(?:from|von|de|envoyé par)\s*:?\*?\s*:?\s*\S")
_HEADER_LINE_RE = re.compile(
    r"^\s*\*?(?:sent|date|to|subject|gesendet|datum|an|betreff|envoyé|à|objet|enviado|para|asunto)\s*:"
)
_DEVICE_SIGNATURE_RE = re.compile(
    r"^\s*(?:sent from my \w+|sent from (?:outlook|mail) for \w+|get outlook for \w+|von meinem \w+ gesendet|"
    r"envoyé de mon \w+|enviado desde mi \w+)"
)
_CLOSINGS = frozenset(
    {
        "best",
        "best regards",
        "best wishes",
        "regards",
        "kind regards",
        "warm regards",
        "warmest regards",
        "many thanks",
        "thanks",
        "thank you",
        "thanks again",
        "thanks so much",
        "cheers",
        "sincerely",
        "yours sincerely",
        "yours truly",
        "all the best",
        "talk soon",
        "br",
        "rgds",
        "thx",
        "mit freundlichen grüßen",
        "mit freundlichen grüssen",
        "freundliche grüße",
        "freundliche grüsse",
        "viele grüße",
        "viele grüsse",
        "beste grüße",
        "beste grüsse",
        "liebe grüße",
        "liebe grüsse",
        "lg",
        "vg",
        "mfg",
        "gruß",
        "gruss",
        "grüße",
        "grüsse",
        "danke",
        "vielen dank",
        "cordialement",
        "bien à vous",
        "bien cordialement",
        "merci",
        "merci beaucoup",
        "bonne journée",
        "saludos",
        "un saludo",
        "atentamente",
        "saludos cordiales",
        "gracias",
        "muchas gracias",
    }
)  # sign-off lines that open a signature block


def _is_reply_header(lines: list[str], index: int) -> bool:
    line = lines[index].casefold()
    joined = " ".join(x.casefold().strip() for x in lines[index : index + 3])
    if any(rx.match(line) for rx in _REPLY_HEADER_RES):
        return True
    if line.lstrip().startswith(("on ", "am ", "le ", "el ")):
        two = " ".join(x.casefold().strip() for x in lines[index : index + 2])
        if any(rx.match(two) for rx in _REPLY_HEADER_RES[:4]):
            return True
    if _FROM_LINE_RE.match(line):
        following = [x.casefold() for x in lines[index + 1 : index + 4]]
        return sum(1 for x in following if _HEADER_LINE_RE.match(x)) >= 2 or "wrote:" in joined
    return False


def _signature_start(lines: list[str]) -> int | None:
    seen_content = False
    for index, raw in enumerate(lines):
        line = raw.strip()
        if raw.rstrip("\n") in ("-- ", "--") or line == "--":
            return index
        if _DEVICE_SIGNATURE_RE.match(line.casefold()):
            return index
        closing = line.casefold().rstrip(",.!;: ").strip()
        if seen_content and closing in _CLOSINGS:
            rest = [x for x in lines[index + 1 :] if x.strip()]
            if len(rest) <= SIGNATURE_MAX_LINES:
                return index
        if line:
            seen_content = True
    return None


def strip_quoted(body: str | None) -> str:
    """The body without quoted replies, forwarded headers and the signature.

    Cuts at the first reply header ("On … wrote:", "Am … schrieb …:", "Le … a écrit :", "El … escribió:",
    "-----Original Message-----", an Outlook "From:/Sent:/To:" block, a line of underscores), drops
    lines starting with ">", then cuts at a signature: a "-- " line, "Sent from my iPhone" and the like,
    or a closing such as "Best," / "Viele Grüße" followed by at most 8 lines.
    """
    if not body:
        return ""
    lines = body.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for index in range(len(lines)):
        if _is_reply_header(lines, index):
            lines = lines[:index]
            break
    lines = [x for x in lines if not x.lstrip().startswith(">")]
    cut = _signature_start(lines)
    if cut is not None:
        lines = lines[:cut]
    text = "\n".join(x.rstrip() for x in lines).strip()
    return re.sub(r"\n{3,}", "\n\n", text)
