"""Request-target normalisation, as Envoy does it before routing and RBAC, so a policy cannot be sidestepped.

`deny: /admin/*` must also catch `//admin/x`, `/./admin/x`, `/%61dmin/x`, `/a/../admin/x` and the
absolute form `http://b/admin/x`: an application behind the sidecar would serve all of them as
`/admin/x`. Envoy's `normalize_path` (RFC 3986 6.2.2: decode percent-encoded unreserved characters,
remove dot segments) with `merge_slashes` and `path_with_escaped_slashes_action: REJECT_REQUEST` is
the model. What cannot be normalised into one unambiguous path is refused (400), never guessed at:
an encoded `/` or `\\`, a `..` that climbs above the root, a broken percent escape.
"""

from __future__ import annotations

import re

# RFC 3986 2.3: decoding these never changes what a URI means.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_HEX = frozenset("0123456789abcdefABCDEF")
_ABSOLUTE_FORM = re.compile(r"\A[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*")
_SLASHES = re.compile(r"/{2,}")


class PathRefused(ValueError):
    """A request target that cannot be normalised into one path; the message says why."""


def _decode_unreserved(path: str) -> str:
    out = []
    i = 0
    while i < len(path):
        char = path[i]
        if char != "%":
            out.append(char)
            i += 1
            continue
        escape = path[i + 1 : i + 3]
        if len(escape) < 2 or not set(escape) <= _HEX:
            raise PathRefused(f"invalid percent escape {path[i : i + 3]!r}")
        decoded = chr(int(escape, 16))
        if decoded in "/\\":
            # An encoded separator means one path to the proxy and another to many applications.
            raise PathRefused(f"encoded path separator {path[i : i + 3]!r}")
        out.append(decoded if decoded in _UNRESERVED else "%" + escape.upper())
        i += 3
    return "".join(out)


def _remove_dot_segments(path: str) -> str:
    segments = path.split("/")[1:]
    kept: list[str] = []
    for segment in segments:
        if segment == ".":
            continue
        if segment == "..":
            if not kept:
                raise PathRefused("'..' climbs above the root")
            kept.pop()
            continue
        kept.append(segment)
    trailing = segments[-1] in (".", "..")  # "/a/." names the directory "/a/"
    return "/" + "/".join(kept) + ("/" if trailing and kept else "")


def normalize_path(target: str) -> str:
    """The normalised form of an HTTP request target (origin or absolute form), query kept as sent.

    Raises PathRefused for a target that has no single meaning.
    """
    absolute = _ABSOLUTE_FORM.match(target)
    if absolute:
        target = target[absolute.end() :] or "/"
        if target.startswith("?"):
            target = "/" + target
    if "#" in target:
        raise PathRefused("a request target carries no fragment")
    path, question, query = target.partition("?")
    if not path.startswith("/"):
        raise PathRefused("path must start with '/'")
    for char in path:
        if not "\x21" <= char <= "\x7e" or char == "\\":
            raise PathRefused(f"character {char!r} is not allowed in a path")
    decoded = _decode_unreserved(path)
    # Envoy removes dot segments, then merges slashes; many applications merge first. Where the two
    # orders disagree ("/a//../x") the proxy cannot know which path the application will serve.
    envoy_order = _SLASHES.sub("/", _remove_dot_segments(decoded))
    merged_first = _remove_dot_segments(_SLASHES.sub("/", decoded))
    if envoy_order != merged_first:
        raise PathRefused("'..' after an empty segment is ambiguous")
    return envoy_order + question + query


def path_only(target: str) -> str:
    """The normalised path without its query (what routing and authorization match on)."""
    return normalize_path(target).partition("?")[0]
