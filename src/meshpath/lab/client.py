"""The lab's HTTP client: one GET, its status and body (status 0 when the request failed).

The lab calls it inside a node's namespace (:func:`meshpath.collect.netns.inside_netns`), so
``Lab.worker_call`` is a request from inside the edge namespace, like ``curl`` run there.
"""

from __future__ import annotations

import http.client
from urllib.parse import urlsplit


def get(url: str, timeout: float) -> tuple[int, str]:
    """GET ``url`` (http only); (0, "<ExceptionName>: ...") when it did not complete."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return 0, f"ValueError: not an http:// URL: {url!r}"
    conn = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read().decode(errors="replace")
    except (OSError, http.client.HTTPException) as exc:
        return 0, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
