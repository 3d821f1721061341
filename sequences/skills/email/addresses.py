"""Email addresses of inbound mail: the name and address in a From header, its domain, and whether
it is a consumer mailbox (whose domain names no company). Pure functions (no I/O).
"""

from __future__ import annotations

import re
from email.header import decode_header, make_header
from email.utils import getaddresses

FREE_MAIL_DOMAINS: frozenset[str] = frozenset(
    {
        # global webmail
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "aim.com",
        "proton.me",
        "protonmail.com",
        "protonmail.ch",
        "pm.me",
        "tutanota.com",
        "tutanota.de",
        "tuta.io",
        "zoho.com",
        "zohomail.com",
        "fastmail.com",
        "fastmail.fm",
        "hey.com",
        "mail.com",
        "email.com",
        "gmx.com",
        "gmx.net",
        "yahoo.com",
        "ymail.com",
        "rocketmail.com",
        "yandex.com",
        "yandex.ru",
        "ya.ru",
        # Europe
        "gmx.de",
        "gmx.at",
        "gmx.ch",
        "web.de",
        "t-online.de",
        "freenet.de",
        "posteo.de",
        "mailbox.org",
        "arcor.de",
        "orange.fr",
        "wanadoo.fr",
        "free.fr",
        "laposte.net",
        "sfr.fr",
        "libero.it",
        "virgilio.it",
        "tiscali.it",
        "seznam.cz",
        "wp.pl",
        "o2.pl",
        "interia.pl",
        "onet.pl",
        "btinternet.com",
        "sky.com",
        "virginmedia.com",
        "telenet.be",
        "ziggo.nl",
        "bluewin.ch",
        "mail.ru",
        "inbox.ru",
        "list.ru",
        "bk.ru",
        "rambler.ru",
        # Americas
        "comcast.net",
        "verizon.net",
        "att.net",
        "sbcglobal.net",
        "bellsouth.net",
        "cox.net",
        "charter.net",
        "earthlink.net",
        "uol.com.br",
        "bol.com.br",
        "terra.com.br",
        # Asia
        "qq.com",
        "163.com",
        "126.com",
        "yeah.net",
        "sina.com",
        "sina.cn",
        "sohu.com",
        "aliyun.com",
        "naver.com",
        "daum.net",
        "hanmail.net",
        "rediffmail.com",
    }
)  # consumer mailbox providers: a sender here says nothing about their company
FREE_MAIL_FAMILIES: frozenset[str] = frozenset(
    {"yahoo", "hotmail", "outlook", "live", "gmx", "yandex", "aol"}
)  # providers with a domain per country: "<family>.<country suffix>" is free mail (yahoo.co.uk, gmx.fr)


_ADDRESS_RE = re.compile(r"[^@\s<>(),;:\"\[\]]+@[^@\s<>(),;:\"\[\]]+")
_SUFFIX_LABEL_RE = re.compile(r"[a-z]{2,3}")


def _decode_header(header: str) -> str:
    try:
        return str(make_header(decode_header(header)))
    except (ValueError, LookupError, UnicodeError, TypeError):  # malformed encoded words: keep the raw text
        return header


def parse_address(header: str | None) -> tuple[str, str | None]:
    """Split a From/To header into ``(display name, email)``; the email is lower-cased, None if absent.

    Handles ``Name <a@b.com>``, ``"Last, First" <a@b.com>``, ``a@b.com (Name)``, bare addresses and
    RFC 2047 encoded names; for a list of addresses the first one with an ``@`` wins.
    """
    if not header or not header.strip():
        return "", None
    text = _decode_header(header.replace("\r", " ").replace("\n", " "))
    for name, address in getaddresses([text]):
        address = address.strip().strip(".")
        if _ADDRESS_RE.fullmatch(address):
            return name.strip().strip('"').strip(), address.lower()
    found = _ADDRESS_RE.search(text)
    if found is None:
        return text.strip().strip('"').strip() if "@" not in text else "", None
    name = text[: found.start()].strip().strip("<").strip().strip('"').strip()
    return name, found.group(0).strip(".").lower()


def domain_of(email: str | None) -> str | None:
    """The lower-cased domain of an address or header (``"Dana <dana@Acme.io>"`` → ``acme.io``)."""
    _, address = parse_address(email)
    if address is None:
        return None
    domain = address.rsplit("@", 1)[1].strip(".")
    return domain or None


def is_free_mail(email: str | None) -> bool:
    """Whether the address is at a consumer mailbox provider (so its domain names no company)."""
    domain = domain_of(email)
    if domain is None:
        return False
    if domain in FREE_MAIL_DOMAINS:
        return True
    family, _, suffix = domain.partition(".")
    labels = suffix.split(".")
    return family in FREE_MAIL_FAMILIES and 1 <= len(labels) <= 2 and all(_SUFFIX_LABEL_RE.fullmatch(x) for x in labels)
