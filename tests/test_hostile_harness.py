"""The hostile-input harness judges what it promises: tracebacks, exits, lines, files."""

from __future__ import annotations

from pathlib import Path

from tests.hostile import Case, Outcome, ready, verdict


def _case(run, **kw) -> Case:
    return Case("harness", "x", run, **kw)


def test_clean_refusal(tmp_path):
    assert verdict(_case(lambda tmp: Outcome(2, "", "error: bad\n")), tmp_path) is None


def test_traceback_wrong_exit_and_many_lines(tmp_path):
    assert verdict(_case(lambda tmp: Outcome(None, "", "", "Traceback\nKeyError: 'x'")), tmp_path)
    assert "exit 1" in verdict(_case(lambda tmp: Outcome(1, "", "error: x\n")), tmp_path)
    assert "2 stderr lines" in verdict(_case(lambda tmp: Outcome(2, "", "a\nb\n")), tmp_path)


def test_changed_files_are_caught_and_ready_protects_the_setup(tmp_path):
    (tmp_path / "old").write_text("1")

    def clobber(tmp: Path) -> Outcome:
        (tmp / "old").write_text("2")
        return Outcome(2, "", "error: x\n")

    assert "old" in verdict(_case(clobber), tmp_path)

    def setup_then_clobber(tmp: Path, mark: bool) -> Outcome:
        (tmp / "new").write_text("1")
        if mark:
            ready(tmp)
        (tmp / "new").write_text("2")
        return Outcome(2, "", "error: x\n")

    (tmp_path / "a").mkdir()
    assert verdict(_case(lambda tmp: setup_then_clobber(tmp, False)), tmp_path / "a") is None
    (tmp_path / "b").mkdir()
    assert "new" in verdict(_case(lambda tmp: setup_then_clobber(tmp, True)), tmp_path / "b")
