"""Storage URLs as people may see them: the password never leaves the process.

A URL given with ``--storage`` is used as given and shown only through ``shown_url``:
in terminal output, error messages, dashboards (pages people share) and anything
stored in a study. A URL holding a password need not appear on a command line, where
every user of the machine can read it in the process list: ``--storage @FILE`` reads it
from a file, and ``ARCHSEARCH_STORAGE`` supplies it from the environment
(``read_storage``).
"""

from __future__ import annotations

import re

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

_USERINFO_PASSWORD = re.compile(r"(?P<head>^[A-Za-z][A-Za-z0-9+.\-]*://[^:/@?#]*):[^@/?#]*@")


def shown_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (SQLAlchemy's ``hide_password``).

    A string SQLAlchemy cannot parse is still masked where it looks like
    ``scheme://user:password@...``, since it may be a mistyped URL holding a password.
    """
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError, TypeError):
        return _USERINFO_PASSWORD.sub(r"\g<head>:***@", url)
    # Only a URL with a password is re-rendered (rendering re-quotes file paths).
    return url if parsed.password is None else parsed.render_as_string(hide_password=True)


def scrubbed(text: str, url: str) -> str:
    """``text`` (say, a driver's error message) with ``url`` and its password, if any, masked."""
    text = text.replace(url, shown_url(url))
    match = _USERINFO_PASSWORD.match(url)
    password = url[match.end("head") + 1:match.end() - 1] if match else ""
    try:
        password = make_url(url).password or password
    except (ArgumentError, ValueError, TypeError):
        pass
    return text.replace(str(password), "***") if password else text


def read_storage(value: str | None) -> str | None:
    """A storage URL as given, or, for ``@FILE``, the first non-blank line of that file."""
    from pathlib import Path

    from archsearch.errors import ArchsearchError

    if not value or not value.startswith("@"):
        return value
    path = Path(value[1:]).expanduser()
    try:
        lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    except FileNotFoundError:
        raise ArchsearchError(f"storage file {path}: no such file") from None
    except (IsADirectoryError, PermissionError, UnicodeDecodeError) as error:
        raise ArchsearchError(f"storage file {path}: cannot read it ({type(error).__name__})") from None
    if not lines:
        raise ArchsearchError(f"storage file {path} is empty: it should hold one storage URL")
    return lines[0]


__all__ = ["read_storage", "scrubbed", "shown_url"]
