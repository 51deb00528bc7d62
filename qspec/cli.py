"""Command-line conventions shared by ``python -m hdl``, ``models`` and ``search``.

A user error is one line on stderr naming the option or key and what is allowed,
and exit status 2; nothing is left half-written (see :mod:`qspec.files`).
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from importlib import metadata

from .errors import ParamError
from .names import IDENTIFIER, is_name, name_rule

__all__ = [
    "CliError", "OneLineParser", "ParamError", "Terminated", "extra_for", "install_hint",
    "int_option", "name_option", "option_error", "run_cli", "seconds_option",
]  # fmt: skip


# import names that are not their distribution's name (the rest are, up to - and _)
_DISTRIBUTION = {"sklearn": "scikit-learn"}


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@cache
def _extras() -> dict[str, str]:
    """Distribution (normalised) -> the extra of hwfirst's pyproject that lists it, read
    from the installed metadata so that pyproject.toml stays the one home of the extras
    ({} when hwfirst is not installed)."""
    try:
        reqs = metadata.requires("hwfirst") or []
    except metadata.PackageNotFoundError:
        return {}
    out: dict[str, str] = {}
    for req in reqs:
        name = re.match(r"[A-Za-z0-9._-]+", req)
        extra = re.search(r"extra\s*==\s*[\"']([^\"']+)", req)
        if name and extra and _normal(name.group()) != "hwfirst":
            out.setdefault(_normal(name.group()), extra.group(1))
    return out


def extra_for(module: str) -> str | None:
    """The pyproject extra that installs the top-level ``module`` (``None``: none does)."""
    top = module.partition(".")[0]
    return _extras().get(_normal(_DISTRIBUTION.get(top, top)))


def install_hint(module: str) -> str:
    """The command that installs ``module``'s extra, e.g. ``pip install 'hwfirst[sim]'``."""
    extra = extra_for(module)
    return f"pip install 'hwfirst[{extra}]'" if extra else f"pip install {module}"


class CliError(Exception):
    """A user error: printed as one line, exit status 2."""


def option_error(e: ValueError, options: Mapping[str, str]) -> CliError:
    """An API error as a :class:`CliError`: a :class:`ParamError` whose parameter
    ``options`` maps (API parameter -> option, e.g. ``{"random_codes": "--random"}``)
    names the option instead; anything else keeps its first line."""
    if isinstance(e, ParamError) and e.param in options:
        return CliError(e.renamed(options[e.param]))
    return CliError(str(e).splitlines()[0] if str(e) else type(e).__name__)


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line (raises :class:`CliError`)."""

    def error(self, message: str):
        raise CliError(f"{self.prog}: {message}")


def run_cli(
    prog: str,
    body: Callable[[], int],
    user_errors: Sequence[type[BaseException]] = (),
) -> int:
    """Run ``body``; a :class:`CliError`, ``ValueError`` or one of ``user_errors`` becomes
    ``PROG: error: <first line>`` on stderr and exit status 2."""
    try:
        with terminated_as_interrupt():
            return body()
    except ModuleNotFoundError as e:  # an optional extra that is not installed
        if extra_for(e.name or "") is None:
            raise
        print(f"{prog}: error: {e.name} is not installed: {install_hint(e.name)}", file=sys.stderr)
        return 2
    except (CliError, ValueError, *user_errors) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        prefix = "" if msg.startswith(prog) else f"{prog}: error: "
        print(f"{prefix}{msg}", file=sys.stderr)
        return 2


def int_option(option: str, minimum: int = 0, maximum: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer in [``minimum``, ``maximum``], else a one-line
    :class:`CliError`."""
    allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"

    def parse(text: str) -> int:
        try:
            v = int(text)
        except ValueError:
            v = minimum - 1
        if v < minimum or (maximum is not None and v > maximum):
            raise CliError(f"{option} must be an integer {allowed}, got {text!r}")
        return v

    return parse


def seconds_option(option: str, unit: str = "seconds") -> Callable[[str], float]:
    """An argparse ``type``: a finite number > 0 (of ``unit``), else a one-line
    :class:`CliError`."""

    from .limits import check_seconds

    def parse(text: str) -> float:
        try:
            return check_seconds(option, float(text), unit=unit)
        except ValueError:  # not a number, or ParamError: the text as the user wrote it
            raise CliError(
                f"{option} must be a finite number of {unit} > 0, got {text!r}"
            ) from None

    return parse


def name_option(option: str, rule: str = IDENTIFIER) -> Callable[[str], str]:
    """An argparse ``type``: a name by :mod:`qspec.names` ``rule``, else a one-line
    :class:`CliError`."""

    def parse(text: str) -> str:
        if not is_name(text, rule):
            raise CliError(f"{option} must be {name_rule(rule)}, got {text!r}")
        return text

    return parse


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so the same clean-up runs: Optuna fails the running
    trial, tool subprocess groups are killed and temporary directories removed."""


@contextlib.contextmanager
def terminated_as_interrupt():
    """SIGTERM raises :class:`Terminated` in the main thread while the CLI runs."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():  # signals: main only
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    old = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
