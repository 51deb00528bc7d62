"""Errors shared by every layer (torch-free, imports nothing of the project)."""

from __future__ import annotations


class ParamError(ValueError):
    """A bad value of one API parameter: ``param`` names it, and the one-line message
    starts with that name (``stages must be ...``), so a CLI can name its option instead
    (:func:`qspec.cli.option_error`)."""

    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param

    def renamed(self, name: str) -> str:
        """The message's first line with the parameter called ``name`` (e.g. an option)."""
        msg = str(self).splitlines()[0]
        if msg.startswith(self.param):
            return name + msg[len(self.param) :]
        return f"{name}: {msg}"
