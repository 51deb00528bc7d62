"""The README sections the bench scripts regenerate, between ``<!-- NAME:begin -->`` and
``<!-- NAME:end -->`` markers."""

from __future__ import annotations

from pathlib import Path

from qspec.files import atomic_write


def markers(name: str) -> tuple[str, str]:
    return f"<!-- {name}:begin -->", f"<!-- {name}:end -->"


def splice(text: str, name: str, body: str) -> str | None:
    """``text`` with everything between the ``name`` markers replaced by ``body`` (on the line
    after the begin marker, up to the end marker); None when the markers are not there once."""
    begin, end = markers(name)
    if text.count(begin) != 1 or text.count(end) != 1 or text.index(begin) > text.index(end):
        return None
    pre, rest = text.split(begin, 1)
    post = rest.split(end, 1)[1]
    return f"{pre}{begin}\n{body}{end}{post}"


def write_sections(readme: Path, sections: dict[str, str], *, required: bool = True) -> None:
    """Replace each named section of ``readme`` by its body and write the file once.

    A missing marker pair stops the script (``SystemExit``) when ``required``; else that
    section is left out."""
    text = readme.read_text()
    for name, body in sections.items():
        new = splice(text, name, body)
        if new is None:
            if required:
                raise SystemExit(f"{readme.name} lacks the {name} markers")
            continue
        text = new
    atomic_write(readme, text)
