"""JSON with comments and trailing commas (JSONC), as wrangler reads it (pure).

Wrangler parses both ``wrangler.json`` and ``wrangler.jsonc`` with its JSONC parser, so
``// line`` and ``/* block */`` comments and a trailing comma before ``}`` or ``]`` are
accepted in either file. This module blanks comments out (keeping every newline, so the
line numbers in an error still point at the user's file), drops trailing commas, and hands
the rest to :func:`json.loads`. Strings are copied untouched: ``"http://x"`` keeps its
``//``.
"""

from __future__ import annotations

import json
from typing import Any


class JsoncError(ValueError):
    """The text is not JSONC; ``line`` and ``column`` are 1-based, in the original text."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(f"{message} (line {line}, column {column})")
        self.line = line
        self.column = column


def loads(text: str) -> Any:
    """Parse JSONC text into Python values; :class:`JsoncError` naming line and column."""
    cleaned = _drop_trailing_commas(strip_comments(text))
    try:
        return json.loads(cleaned)
    except json.JSONDecodeError as exc:
        raise JsoncError(exc.msg, exc.lineno, exc.colno) from exc


def strip_comments(text: str) -> str:
    """Blank out ``//`` and ``/* */`` comments outside strings; newlines are kept."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            end = _string_end(text, i)
            out.append(text[i:end])
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                line = text.count("\n", 0, i) + 1
                raise JsoncError("unterminated /* comment", line, i - text.rfind("\n", 0, i))
            out.append(_blank(text[i : end + 2]))
            i = end + 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _string_end(text: str, start: int) -> int:
    """Index just past the JSON string opening at ``start`` (or the end of the text)."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            return i + 1
        if text[i] == "\n":  # an unterminated string: let json.loads report it here
            return i
        i += 1
    return len(text)


def _blank(chunk: str) -> str:
    return "".join("\n" if c == "\n" else " " for c in chunk)


def _drop_trailing_commas(text: str) -> str:
    """Remove a comma whose next non-blank character closes an object or array."""
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == '"':
            end = _string_end(text, i)
            out.append(text[i:end])
            i = end
            continue
        if ch == ",":
            j = i + 1
            while j < n and text[j] in " \t\r\n":
                j += 1
            if j < n and text[j] in "}]":
                out.append(" ")
                i += 1
                continue
        out.append(ch)
        i += 1
    return "".join(out)
