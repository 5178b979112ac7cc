"""
What counts as a secret, in one place, and how a secret is masked. Used by the config
section (values compared by hash, never read back in clear), the configuration facts (the
same rule runs on the host) and the troubleshooting bundle (meant to be mailed to a list).

A property is secret when its name says so (``SECRET_NAME``), when the data declares it
(``omero_web_secret_config_keys``) or when a feature does (a Redis URL with a password).
Independently of names, credentials inside URLs (``scheme://user:PASSWORD@host``,
``?password=...``) and every secret value the control machine knows are masked in text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

MASK = "********"
#: Property names whose values are secrets (case-insensitive search).
SECRET_NAME = r"pass$|passwd|password|secret|token|credential"
_SECRET_NAME = re.compile(SECRET_NAME, re.I)
_URL_PASSWORD = re.compile(r"(?P<pre>\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@\"'<>]*:)[^@\s/\"'<>]+(?=@)")
_QUERY_SECRET = re.compile(r"(?P<pre>[?&;](?:password|passwd|pass|pwd|token|secret|auth|key)=)[^&\s\"'<>]+", re.I)
#: Known values shorter than this are not masked verbatim (they would mask common words).
MIN_VALUE = 4


def is_secret_name(key: str, declared: Iterable[str] = ()) -> bool:
    """Whether a property's value is a secret: by its name, or declared so."""
    return key in set(declared) or bool(_SECRET_NAME.search(key))


def secret_names(keys: Iterable[str], declared: Iterable[str] = ()) -> list[str]:
    declared = set(declared)
    return sorted(k for k in keys if is_secret_name(k, declared))


def url_password(url: str | None) -> str | None:
    """The password in a URL's userinfo, if any."""
    try:
        return urlsplit(url).password if url else None
    except ValueError:
        return None


def mask_text(text: str, known: Iterable[str] = ()) -> str:
    """``text`` with URL credentials and every known secret value replaced by ``MASK``."""
    for value in sorted({v for v in known if v and len(v) >= MIN_VALUE}, key=len, reverse=True):
        text = text.replace(value, MASK)
    text = _URL_PASSWORD.sub(lambda m: m.group("pre") + MASK, text)
    return _QUERY_SECRET.sub(lambda m: m.group("pre") + MASK, text)


def mask_config_lines(lines: Iterable[str], declared: Iterable[str] = (), known: Iterable[str] = ()) -> list[str]:
    """``key=value`` lines: values of secret properties replaced whole, then ``mask_text``."""
    declared, known = set(declared), list(known)
    masked = []
    for line in lines:
        key, sep, value = line.partition("=")
        if sep and value and is_secret_name(key, declared):
            value = MASK
        masked.append(mask_text(key + sep + value, known))
    return masked


class HiddenStdin(list):
    """
    A command's standard input (pyinfra's ``_stdin``) holding secrets, shown as hidden: pyinfra
    (3.10) prints a fact's arguments, ``_stdin`` included, from ``-v`` on and with ``--debug``
    ("Loaded fact X (_stdin=...)"), by ``str()``; it sends a list line by line, each ending with
    a newline (``connectors.util.write_stdin``). Give facts it with ``_get_pty=False`` (a
    terminal would echo it into the output).
    """

    def __init__(self, text: str):
        super().__init__([text])

    def __repr__(self) -> str:
        return "<stdin hidden>"

    __str__ = __repr__


class Secrets:
    """Secret values known to the control machine; its repr never shows them (pyinfra prints arguments)."""

    def __init__(self, values: Iterable[str]):
        self._values = tuple(sorted({v for v in values if v}))

    def __iter__(self):
        return iter(self._values)

    def __repr__(self) -> str:
        return f"Secrets({len(self._values)} values)"

    def __eq__(self, other) -> bool:
        return isinstance(other, Secrets) and other._values == self._values

    def __hash__(self) -> int:
        return hash(self._values)
