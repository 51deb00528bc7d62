"""The one rule for user-given names (torch-free, the bottom layer).

A layer or module name reaches Amaranth's RTLIL text and Yosys scripts verbatim, and a
study name becomes a directory, so a name is checked where it enters, never escaped
later.  Two forms, both ASCII and at most :data:`MAX_NAME_LENGTH` characters:

* :data:`IDENTIFIER` -- layer names, module tops: ``[A-Za-z_][A-Za-z0-9_]*``.  A Verilog
  keyword (``module``) is an identifier too: Yosys writes it escaped (``\\module``).
* :data:`NAME` -- spec and study names, which may also hold ``-`` (``jsc-toy``, the model
  names); they are mangled to identifiers before any tool sees them.
"""

from __future__ import annotations

import re
from typing import Any

from .errors import ParamError

MAX_NAME_LENGTH = 64
IDENTIFIER = "[A-Za-z_][A-Za-z0-9_]*"
NAME = "[A-Za-z_][A-Za-z0-9_-]*"
_RULES = {IDENTIFIER: re.compile(IDENTIFIER), NAME: re.compile(NAME)}


def name_rule(rule: str = IDENTIFIER) -> str:
    """What a name must be, for messages: ``an identifier ([A-Za-z_]..., at most 64 ...)``."""
    what = "an identifier" if rule == IDENTIFIER else "a name"
    return f"{what} ({rule}, at most {MAX_NAME_LENGTH} characters)"


def is_name(value: Any, rule: str = IDENTIFIER) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= MAX_NAME_LENGTH
        and _RULES[rule].fullmatch(value) is not None
    )


def check_name(param: str, value: Any, rule: str = IDENTIFIER, *, empty: bool = False) -> str:
    """``value`` if it follows ``rule`` (or is ``""`` when ``empty``), else a one-line
    :class:`~qspec.errors.ParamError` naming ``param``."""
    if (empty and value == "") or is_name(value, rule):
        return value
    nothing = " or empty" if empty else ""
    raise ParamError(param, f"{param} must be {name_rule(rule)}{nothing}, got {value!r}")
