"""What a Worker's source does with the network (pure, on text).

Not a JavaScript parser: comments are blanked out (strings kept, line numbers kept), then
a few precise patterns are looked for:

* a binding called like ``env.MESH.fetch(...)`` / ``env.MESH.connect(...)`` (also
  ``env["MESH"].fetch``, ``this.env.MESH``, and ``MESH.fetch`` after destructuring);
* any reference to ``env.MESH`` (the binding handed on to a helper);
* the *global* ``fetch(...)`` or ``connect(...)`` (from ``cloudflare:sockets``) aimed at a
  private address, written as a literal or through a ``const`` holding one. Cloudflare's
  docs: a Worker reaches a private network only through a Workers VPC binding; the global
  ``fetch`` goes to the public Internet (workerd refuses private addresses outright:
  "connecting to ... is not allowed").
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Final
from urllib.parse import urlsplit

# Hostname suffixes that only resolve inside a private network (RFC 6762 .local,
# RFC 8375 .home.arpa, ICANN's reserved .internal, and the common .lan/.corp).
PRIVATE_SUFFIXES: Final = (".internal", ".local", ".lan", ".corp", ".home.arpa")
_IDENT = r"[A-Za-z_$][\w$]*"
_CALL = r"\s*\??\.\s*(fetch|connect)\s*\("
_URL_LITERAL = re.compile(r"""(["'`])(https?://[^"'`\s]+)""")
_CONST_URL = re.compile(rf"""\b(?:const|let|var)\s+({_IDENT})\s*=\s*(["'`])(https?://[^"'`\s]+)""")
_GLOBAL_CALL = re.compile(r"(?<![\w$.])(?:(?:globalThis|self)\s*\.\s*)?(fetch|connect)\s*\(")
_NEW_REQUEST = re.compile(r"\s*new\s+Request\s*\(")


@dataclass(frozen=True, slots=True)
class SourceFile:
    """One source file of the Worker: its path (relative to the project) and text."""

    path: str
    text: str


@dataclass(frozen=True, slots=True)
class Hit:
    """Where something was found: ``file:line`` and the line itself (trimmed)."""

    path: str
    line: int
    text: str

    def describe(self) -> str:
        return f"{self.path}:{self.line}: {self.text}"


@dataclass(frozen=True, slots=True)
class PrivateCall:
    """A global ``fetch``/``connect`` to a private address."""

    hit: Hit
    call: str  # "fetch" or "connect"
    target: str  # the URL or host:port as written


def strip_js_comments(text: str) -> str:
    """Blank out ``//`` and ``/* */`` comments; strings and template literals are kept.

    Regular-expression literals are not recognised (a ``/"/`` would start a string); in
    Worker code that talks to a network this is rare and only costs a missed finding.
    """
    out: list[str] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in "\"'`":
            end = _quoted_end(text, i, ch)
            out.append(text[i:end])
            i = end
        elif text.startswith("//", i):
            end = text.find("\n", i)
            end = n if end < 0 else end
            out.append(" " * (end - i))
            i = end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("".join("\n" if c == "\n" else " " for c in text[i:end]))
            i = end
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def _quoted_end(text: str, start: int, quote: str) -> int:
    i = start + 1
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == quote or (c == "\n" and quote != "`"):
            return i + 1
        i += 1
    return len(text)


def _hit(src: SourceFile, code: str, pos: int) -> Hit:
    line = code.count("\n", 0, pos) + 1
    raw = src.text.splitlines()[line - 1] if src.text else ""
    return Hit(src.path, line, raw.strip()[:160])


def binding_calls(sources: tuple[SourceFile, ...], name: str) -> tuple[Hit, ...]:
    """Places where binding ``name`` is called: ``env.NAME.fetch(`` / ``.connect(``."""
    n = re.escape(name)
    pattern = re.compile(rf"(?:(?<![\w$]){n}|\[\s*([\"'`]){n}\1\s*\]){_CALL}")
    return _find_all(sources, pattern)


def binding_references(sources: tuple[SourceFile, ...], name: str) -> tuple[Hit, ...]:
    """Places where ``env.NAME`` (or ``env["NAME"]``, or ``{ NAME } = env``) appears."""
    n = re.escape(name)
    pattern = re.compile(
        rf"\benv\s*\??\.\s*{n}(?![\w$])|\benv\s*\[\s*([\"'`]){n}\1\s*\]"
        rf"|\{{[^{{}}]*(?<![\w$]){n}(?![\w$])[^{{}}]*\}}\s*=\s*(?:this\.)?env\b"
    )
    return _find_all(sources, pattern)


def called_env_names(sources: tuple[SourceFile, ...]) -> dict[str, Hit]:
    """Every ``env.X.fetch(`` / ``env.X.connect(`` in the source: X -> first place."""
    pattern = re.compile(rf"\benv\s*\??\.\s*({_IDENT}){_CALL}")
    found: dict[str, Hit] = {}
    for src in sources:
        code = strip_js_comments(src.text)
        for m in pattern.finditer(code):
            found.setdefault(m.group(1), _hit(src, code, m.start()))
    return found


def _find_all(sources: tuple[SourceFile, ...], pattern: re.Pattern[str]) -> tuple[Hit, ...]:
    hits: list[Hit] = []
    for src in sources:
        code = strip_js_comments(src.text)
        hits += [_hit(src, code, m.start()) for m in pattern.finditer(code)]
    return tuple(hits)


def private_global_calls(sources: tuple[SourceFile, ...]) -> tuple[PrivateCall, ...]:
    """Global ``fetch``/``connect`` calls whose first argument names a private address."""
    out: list[PrivateCall] = []
    for src in sources:
        code = strip_js_comments(src.text)
        consts = {m.group(1): m.group(3) for m in _CONST_URL.finditer(code)}
        for m in _GLOBAL_CALL.finditer(code):
            target = _first_argument_target(code, m.end(), consts)
            if target is not None and is_private_target(target):
                out.append(PrivateCall(_hit(src, code, m.start()), m.group(1), target))
    return tuple(out)


def _first_argument_target(code: str, pos: int, consts: dict[str, str]) -> str | None:
    """The URL or ``host:port`` the call's first argument spells out, if it does."""
    rest = code[pos : pos + 400]
    if (req := _NEW_REQUEST.match(rest)) is not None:
        rest = rest[req.end() :]
    rest = rest.lstrip()
    if (tpl := re.match(rf"`\$\{{\s*({_IDENT})\s*\}}", rest)) is not None:
        return consts.get(tpl.group(1))  # fetch(`${SERVICE}/path`)
    if rest[:1] in ("'", '"', "`"):
        end = _quoted_end(rest, 0, rest[0])
        return rest[1 : end - 1].split("${", 1)[0] or None
    if rest.startswith("{"):  # connect({ hostname: "10.0.1.50", port: 3000 })
        m = re.match(r"""\{\s*hostname\s*:\s*(["'`])([^"'`]+)\1""", rest)
        return m.group(2) if m else None
    m = re.match(rf"({_IDENT})", rest)
    return consts.get(m.group(1)) if m else None


def target_host(target: str) -> str:
    """The host of a URL (``http://10.0.1.50:3000/x``) or of ``host:port``."""
    if "://" in target:
        return urlsplit(target).hostname or ""
    host = target.rsplit(":", 1)[0] if target.count(":") == 1 else target
    return host.strip("[]")


def is_private_target(target: str) -> bool:
    """True for RFC 1918, CGNAT (RFC 6598), loopback, link-local, ULA, and private names."""
    host = target_host(target).lower().rstrip(".")
    if not host:
        return False
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost" or host.endswith(PRIVATE_SUFFIXES)
    cgnat = ipaddress.ip_network("100.64.0.0/10")
    return addr.is_private or addr.is_loopback or addr.is_link_local or addr in cgnat
