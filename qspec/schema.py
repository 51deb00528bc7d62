"""Reading specs from JSON-like dicts: every error is one line naming the key path.

Constructors (``__post_init__``) validate values and name the field in their
messages (``slope_code must be ...``); ``from_dict`` adds the path of the
object (``layers[3].``) in front, and reports missing, unknown and mistyped keys.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .fixed import FixedFormat

MISSING: Any = object()


def join(path: str, key: str | int) -> str:
    """``path.key`` or ``path[i]``; a bare key at the top level."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


@contextmanager
def at(path: str) -> Iterator[None]:
    """Prefix the message of a ``ValueError`` raised inside with ``path.``."""
    try:
        yield
    except ValueError as e:
        if not path:
            raise
        raise ValueError(f"{path}.{e}") from None


class Reader:
    """The keys of one JSON object at ``path``; :meth:`done` rejects keys nobody read."""

    def __init__(self, d: Any, path: str, what: str = "an object") -> None:
        if not isinstance(d, Mapping):
            raise ValueError(f"{path or 'spec'} must be {what}, got {_kind(d)}")
        self.d, self.path, self.seen = d, path, set()

    def get(self, key: str, default: Any = MISSING) -> Any:
        self.seen.add(key)
        if key in self.d:
            return self.d[key]
        if default is MISSING:
            raise ValueError(f"{join(self.path, key)} is missing")
        return default

    def sub(self, key: str, parse: Callable[[Any, str], Any], default: Any = MISSING) -> Any:
        """``parse(value, path)`` of a nested object; ``None`` stays ``None`` if the default is."""
        value = self.get(key, default)
        if value is None and default is None:
            return None
        return parse(value, join(self.path, key))

    def done(self) -> None:
        extra = sorted(str(k) for k in self.d if k not in self.seen)
        if extra:
            known = ", ".join(sorted(self.seen))
            raise ValueError(f"{join(self.path, extra[0])} is not a known key (known: {known})")


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}
    return names.get(type(value), f"{value!r}") if value is not None else "null"


def fmt_to_dict(fmt: FixedFormat) -> dict[str, Any]:
    return {"width": fmt.width, "frac_width": fmt.frac_width, "signed": fmt.signed}


def fmt_from_dict(d: Any, path: str = "") -> FixedFormat:
    r = Reader(d, path, "a format object {width, frac_width, signed}")
    width, frac, signed = r.get("width"), r.get("frac_width"), r.get("signed", True)
    r.done()
    with at(path):
        return FixedFormat(width, frac, signed)


def check_fmt(name: str, fmt: Any) -> FixedFormat:
    if not isinstance(fmt, FixedFormat):
        raise ValueError(f"{name} must be a FixedFormat, got {fmt!r}")
    return fmt


def check_kind(r: Reader, kind: str) -> None:
    got = r.get("kind", kind)
    if got != kind:
        raise ValueError(f"{join(r.path, 'kind')} must be {kind!r}, got {got!r}")
