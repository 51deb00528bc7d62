"""Components that check their parameters before they exist.

Amaranth warns "created but never used" for any Elaboratable that is never
elaborated, including one whose ``__init__`` rejected its parameters.  Checking
in ``__new__`` (before the object is made) keeps a rejected component silent
without touching Amaranth's private state.
"""

from __future__ import annotations

from amaranth.lib import wiring


class CheckedComponent(wiring.Component):
    """A ``wiring.Component`` whose :meth:`check` runs with the constructor's arguments first."""

    @classmethod
    def check(cls, *args, **kwargs) -> None:
        """Raise ``ValueError`` (one line, naming the parameter) for bad arguments."""

    def __new__(cls, *args, **kwargs):
        cls.check(*args, **kwargs)
        return super().__new__(cls, *args, src_loc_at=1, **kwargs)
