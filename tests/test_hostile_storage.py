"""Hostile storages: a study file is repaired or refused, never damaged; inputs are never
written to; the study directory stays inside ``--out``; no password is stored or printed.

Classes: ``storage`` (cut, corrupt or foreign journal and SQLite files, directories,
unknown schemes, missing drivers, an unreachable PostgreSQL) and ``writes`` (readers on
files that are not studies, study names escaping ``--out``).  The study runs on jsc-tiny
with synthesis off (2 points, about a second per resume in-process); the complete journal
is built once per process and copied into each case.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from tests.hostile import Case, Outcome, changed, params, run_main, snapshot, verdict

STUDY = "tiny"
CFG = """
[model]
name = "jsc-tiny"
dataset = "digits16"
[space.default]
weight_width = [2, 3]
act_width = 8
[strategy]
name = "brute_force"
[hardware]
enabled = false
[metrics.accuracy]
scale = 1.0
[metrics.bitops]
scale = 0.2
direction = "minimize"
[score.reference.default]
weight_width = 2
act_width = 8
"""
POINTS = 2  # the space's size: a resumed run completes every point
PASSWORD = "s3cret-pw"
UNREACHABLE_PG = f"postgresql://hwfirst:{PASSWORD}@127.0.0.1:1/nothing"  # port 1: refused


def config(tmp: Path, extra: str = "") -> Path:
    p = tmp / "cfg.toml"
    p.write_text(CFG + extra)
    return p


_SETUP: dict[Path, dict] = {}  # tmp -> what the case's setup made, just before the command


def search(tmp: Path, *argv: str) -> Outcome:
    """``python -m search argv``, after recording every file under ``tmp``: the harness
    snapshots before ``run(tmp)``, i.e. before the setup, so it cannot see a setup file
    changed; :func:`_kept` does."""
    _SETUP[tmp] = snapshot([tmp])
    return run_main("search", list(argv))


def _kept(tmp: Path, out: Outcome) -> str | None:
    lost = changed(_SETUP.pop(tmp), snapshot([tmp]))
    return f"changed: {', '.join(lost[:5])}" if lost else None


def run(tmp: Path, storage: str, *more: str, extra: str = "") -> Outcome:
    out = tmp / "out"
    return search(
        tmp,
        "run", str(config(tmp, extra)), "--storage", storage, "--study", STUDY,
        "--out", str(out), "--no-progress", *more,
    )  # fmt: skip


@functools.cache
def journal_bytes() -> bytes:
    """A complete journal of the tiny study (every point), built once."""
    from search.config import loads_config
    from search.run import run_study

    d = Path(tempfile.mkdtemp(prefix="hostile-journal-"))
    url = f"journal://{d}/study.journal"
    run_study(loads_config(CFG, name=STUDY), storage=url, progress=False, reports=False)
    data = (d / "study.journal").read_bytes()
    shutil.rmtree(d)
    return data


@functools.cache
def sqlite_bytes() -> bytes:
    """A SQLite study database with one small study (no search run needed)."""
    import optuna

    d = Path(tempfile.mkdtemp(prefix="hostile-sqlite-"))
    store = optuna.storages.RDBStorage(f"sqlite:///{d}/study.db")  # no WAL: one plain file
    study = optuna.create_study(study_name=STUDY, storage=store)
    for i in range(3):
        study.add_trial(optuna.trial.create_trial(value=float(i)))
    store.engine.dispose()
    data = (d / "study.db").read_bytes()
    shutil.rmtree(d)
    return data


def done(path: Path) -> dict[int, list[float]]:
    """COMPLETE trials (number -> values) Optuna reads from a journal, read from a copy:
    reading never writes here."""
    import optuna
    from optuna.storages import JournalStorage

    with tempfile.TemporaryDirectory() as d:
        copy = Path(d) / "j"
        copy.write_bytes(path.read_bytes())
        store = JournalStorage(JournalFileBackend(str(copy)))
        study = optuna.load_study(study_name=STUDY, storage=store)
        return {t.number: t.values for t in study.get_trials(states=(TrialState.COMPLETE,))}


def completed(path: Path) -> int:
    return len(done(path))


# --- journal: a cut tail is set aside and the run resumes --------------------------------


def cut_journal(tmp: Path, cut) -> Path:
    j = tmp / "j" / "study.journal"
    j.parent.mkdir()
    data = journal_bytes()
    j.write_bytes(cut(data))
    return j


def _repaired(cut, tail_expected: bool = True):
    def go(tmp: Path) -> Outcome:
        j = cut_journal(tmp, cut)
        data = j.read_bytes()
        meta = {"before": completed(j), "data": data.hex()}
        (tmp / "meta.json").write_text(json.dumps(meta))
        return run(tmp, f"journal://{j}")

    def check(tmp: Path, out: Outcome) -> str | None:
        meta = json.loads((tmp / "meta.json").read_text())
        data = bytes.fromhex(meta["data"])
        j = tmp / "j" / "study.journal"
        sides = sorted(j.parent.glob("study.journal.partial-*"))
        if tail_expected:
            if len(sides) != 1:
                return f"expected one side file, got {[s.name for s in sides]}"
            offset = int(sides[0].name.rsplit("-", 1)[1])
            if sides[0].read_bytes() != data[offset:] or not j.read_bytes().startswith(
                data[:offset]
            ):
                return "side file + kept prefix != the original journal"
            if str(j) not in out.stderr or str(offset) not in out.stderr:
                return f"no warning naming the file and offset: {out.stderr!r}"
        elif sides:
            return f"unexpected side file {sides}"
        elif not j.read_bytes().startswith(data):
            return "a complete journal was rewritten"
        try:
            after = completed(j)
        except Exception as e:  # noqa: BLE001 - the damage this guards against
            return f"journal no longer loads: {type(e).__name__}: {e}"
        if after < meta["before"] or after != POINTS:
            return f"completed trials before {meta['before']}, after {after} (want {POINTS})"
        return None

    return go, check


def _journal_cases() -> list[Case]:
    cuts = {
        "cut-40-bytes-short": lambda d: d[:-40],
        "cut-after-first-record-plus-3": lambda d: d[: d.index(b"\n") + 4],
        "garbage-tail-line": lambda d: d + b"not json\n",
    }
    cases = []
    for name, cut in cuts.items():
        go, check = _repaired(cut)
        cases.append(Case("storage", f"journal-{name}", go, exits=(0,), check=check,
                          watch=lambda tmp: [tmp / "cfg.toml"]))  # fmt: skip
    clean = {  # nothing to set aside: the records are all whole
        "cut-on-a-record-boundary": lambda d: d[: d.rindex(b"\n", 0, -1) + 1],
        "cut-newline-only": lambda d: d[:-1],  # the last record lacks only its newline
    }
    for name, cut in clean.items():
        go, check = _repaired(cut, tail_expected=False)
        cases.append(Case("storage", f"journal-{name}", go, exits=(0,), check=check,
                          watch=lambda tmp: [tmp / "cfg.toml"]))  # fmt: skip
    return cases


def _names(*words):
    """A check: stderr names each of ``words`` (the file, the offset; ``{tmp}`` is the case's
    directory; a function is called when the case is checked)."""

    def check(tmp: Path, out: Outcome) -> str | None:
        texts = [w() if callable(w) else w.format(tmp=tmp) for w in words]
        missing = [w for w in texts if w not in out.stderr]
        return f"stderr does not name {missing}: {out.stderr.strip()!r}" if missing else None

    return check


def _journal_file(content, *, directory: bool = False):
    """``content``: bytes, or a function making them (called when the case runs)."""

    def go(tmp: Path) -> Outcome:
        j = tmp / "j" / "study.journal"
        j.parent.mkdir()
        if directory:
            j.mkdir()
        else:
            j.write_bytes(content() if callable(content) else content)
        return run(tmp, f"journal://{j}")

    return go


def _middle_corrupt(d: bytes) -> bytes:
    lines = d.splitlines(keepends=True)
    lines[3] = b'{"op_code": 4, "trial_id"' + b" " * 10 + b"\n"
    return b"".join(lines)


def _middle_offset() -> str:
    return str(sum(len(x) for x in journal_bytes().splitlines(keepends=True)[:3]))


# --- SQLite and URLs -----------------------------------------------------------------------


def _sqlite_file(make):
    def go(tmp: Path) -> Outcome:
        p = tmp / "s" / "study.db"
        p.parent.mkdir()
        make(p)
        return run(tmp, f"sqlite:///{p}")

    return go


def _no_password(tmp: Path, out: Outcome) -> str | None:
    if PASSWORD in out.stderr + out.stdout:
        return "the password was printed"
    return None


def _url(url: str, *, in_config: bool = False):
    def go(tmp: Path) -> Outcome:
        if in_config:
            out = tmp / "out"
            cfg = config(tmp, f'[storage]\nurl = "{url}"\n')
            return search(
                tmp, "run", str(cfg), "--study", STUDY, "--out", str(out), "--no-progress"
            )
        return run(tmp, url)

    return go


# --- readers: report and verify never write their inputs -----------------------------------


def _report_on(make, name: str = "input.json", url_form=str):
    def go(tmp: Path) -> Outcome:
        p = tmp / "in" / name
        p.parent.mkdir()
        if make is not None:
            make(p)
        return search(tmp, "report", url_form(p), "--study", STUDY, "--out", str(tmp / "out"),
                      "--no-export")  # fmt: skip

    def check(tmp: Path, out: Outcome) -> str | None:
        return _nothing_new(tmp / "in", {name} if make is not None else set())

    return go, check


def _nothing_new(d: Path, keep: set[str]) -> str | None:
    """No file appeared in ``d`` (a reader made no database, journal, -wal or lock file)."""
    created = sorted({p.name for p in d.iterdir()} - keep)
    return f"a reader created {created}" if created else None


def _verify_on(make):
    """``search verify --study-dir`` whose best.json names a storage that is no study."""

    def go(tmp: Path) -> Outcome:
        sd = tmp / "study"
        (sd / "best" / "trial_0").mkdir(parents=True)
        v = sd / "best" / "trial_0" / "net.v"
        v.write_text("module net(); endmodule\n")
        notes = tmp / "notes.json"
        make(notes)
        best = {"study": STUDY, "storage": f"sqlite:///{notes}",
                "best": [{"trial": 0, "verilog": str(v)}]}  # fmt: skip
        (sd / "best.json").write_text(json.dumps(best))
        return search(tmp, "verify", "--study-dir", str(sd))

    return go


def _verify_check(tmp: Path, out: Outcome) -> str | None:
    return _nothing_new(tmp, {"study", "notes.json"})


def _write(data: bytes):
    return lambda p: p.write_bytes(data)


def _half_sqlite(p: Path) -> None:
    d = sqlite_bytes()
    p.write_bytes(d[: len(d) // 2])


# --- the study directory stays inside --out ------------------------------------------------


def _escape(study_of):
    """``--out a/X``: ``../../evil`` would land in ``tmp/evil`` (still inside the case's tmp)."""

    def go(tmp: Path) -> Outcome:
        out = tmp / "a" / "X"
        out.mkdir(parents=True)
        return search(tmp, "run", str(config(tmp)), "--study", study_of(tmp), "--out", str(out),
                      "--no-progress")  # fmt: skip

    def check(tmp: Path, out: Outcome) -> str | None:
        written = [str(p.relative_to(tmp)) for p in tmp.rglob("*")]
        extra = sorted(set(written) - {"a", "a/X", "cfg.toml"})
        return f"written outside --out: {extra}" if extra else None

    return go, check


def _report_escape(tmp: Path) -> Outcome:
    import optuna

    from search.storage import open_storage

    db = tmp / "s.db"
    study = optuna.create_study(study_name="../evil", storage=open_storage(f"sqlite:///{db}"))
    study.set_user_attr("config_source", CFG)  # as if created by python -m search
    (tmp / "X").mkdir()
    return search(tmp, "report", str(db), "--study", "../evil", "--out", str(tmp / "X"),
                  "--no-export")  # fmt: skip


def _report_escape_check(tmp: Path, out: Outcome) -> str | None:
    stray = [p.name for p in tmp.iterdir() if p.name not in ("X", "s.db", "s.db-wal", "s.db-shm")]
    return f"written outside --out: {stray}" if stray or list((tmp / "X").iterdir()) else None


def _cases() -> list[Case]:
    cases = _journal_cases()
    S = "storage"
    cases += [
        Case(S, "journal-garbage-bytes", _journal_file(os.urandom(3000).replace(b"\n", b"x")),
             check=_names("{tmp}/j/study.journal")),
        Case(S, "journal-garbage-lines", _journal_file(b"hello\nworld\n"),
             check=_names("{tmp}/j/study.journal")),
        Case(S, "journal-json-not-records", _journal_file(b"[1, 2]\n{}\n"),
             check=_names("{tmp}/j/study.journal")),
        Case(S, "journal-corrupt-middle", _journal_file(lambda: _middle_corrupt(journal_bytes())),
             check=_names("{tmp}/j/study.journal", _middle_offset)),
        Case(S, "journal-is-a-directory", _journal_file(None, directory=True),
             check=_names("{tmp}/j/study.journal")),
        Case(S, "sqlite-truncated", _sqlite_file(_half_sqlite), check=_names("{tmp}/s/study.db")),
        Case(S, "sqlite-header-only", _sqlite_file(lambda p: p.write_bytes(sqlite_bytes()[:100])),
             check=_names("{tmp}/s/study.db")),
        Case(S, "sqlite-random-bytes", _sqlite_file(_write(os.urandom(8192))),
             check=_names("{tmp}/s/study.db")),
        Case(S, "sqlite-text-file", _sqlite_file(_write(b'{"a": 1}\n')),
             check=_names("{tmp}/s/study.db")),
        Case(S, "sqlite-is-a-directory", _sqlite_file(lambda p: p.mkdir()),
             check=_names("{tmp}/s/study.db")),
        Case(S, "url-unknown-scheme", _url("redis://127.0.0.1/0"), check=_names("sqlite://")),
        Case(S, "url-unknown-scheme-in-config", _url("ftp://h/x", in_config=True),
             check=_names("storage.url")),
        Case(S, "url-mysql-no-driver", _url(f"mysql://u:{PASSWORD}@127.0.0.1/db"),
             check=lambda t, o: _no_password(t, o) or _names("pip install")(t, o)),
        Case(S, "url-mysql-in-config", _url("mysql+pymysql://u@127.0.0.1/db", in_config=True),
             check=_names("pip install")),
        Case(S, "url-postgres-driver-missing",
             _url(f"postgresql+psycopg2://hwfirst:{PASSWORD}@127.0.0.1/x"),
             check=lambda t, o: _no_password(t, o) or _names("psycopg2")(t, o)),
        Case(S, "url-postgres-unreachable", _url(UNREACHABLE_PG),
             check=lambda t, o: _no_password(t, o) or _names("127.0.0.1:1")(t, o)),
        Case(S, "url-postgres-unreachable-in-config", _url(UNREACHABLE_PG, in_config=True),
             check=_no_password),
    ]  # fmt: skip
    W = "writes"
    readers = {
        "report-empty-json": (_write(b""), "input.json", str),
        "report-json": (_write(b'{"best": []}\n'), "input.json", str),
        "report-json-as-sqlite-url": (_write(b"[]\n"), "input.json", lambda p: f"sqlite:///{p}"),
        "report-random-db": (_write(os.urandom(4096)), "study.db", str),
        "report-truncated-db": (_half_sqlite, "study.db", str),
        "report-garbage-journal": (_write(b"garbage\nmore\n"), "study.journal", str),
        "report-empty-journal": (_write(b""), "study.journal", str),
        "report-directory": (lambda p: p.mkdir(), "study.db", str),
        "report-missing-db": (None, "study.db", str),
        "report-missing-journal": (None, "study.journal", str),
    }
    for cid, (make, name, form) in readers.items():
        go, check = _report_on(make, name, form)
        cases.append(Case(W, cid, go, check=check))
    for cid, make in {
        "report-cut-journal": lambda p: p.write_bytes(journal_bytes()[:-40]),
        "report-corrupt-middle-journal": lambda p: p.write_bytes(_middle_corrupt(journal_bytes())),
    }.items():
        go, check = _report_on(make, "study.journal")
        if "cut" in cid:  # a reader ignores a cut tail and repairs nothing (exit 0)
            cases.append(_and_kept(Case(W, cid, go, exits=(0,), check=check)))
        else:  # a corrupt middle: refused (and, as every refusal, untouched: see CASES)
            cases.append(Case(W, cid, go, check=check))
    cases += [
        Case(W, "verify-storage-is-json", _verify_on(_write(b'{"a": 1}\n')), check=_verify_check),
        Case(W, "verify-storage-is-empty", _verify_on(_write(b"")), check=_verify_check),
        Case(W, "report-study-escapes-out", _report_escape, check=_report_escape_check),
    ]
    for cid, study_of in {
        "run-study-dotdot": lambda tmp: "../../evil",
        "run-study-dotdot-one": lambda tmp: "../evil",
        "run-study-absolute": lambda tmp: str(tmp / "abs"),
        "run-study-dot": lambda tmp: ".",
    }.items():
        go, check = _escape(study_of)
        cases.append(Case(W, cid, go, check=check))
    return cases


def _and_kept(case: Case) -> Case:
    """A refusal also leaves every file of the setup as it was."""
    check = case.check

    def both(tmp: Path, out: Outcome) -> str | None:
        return _kept(tmp, out) or (check(tmp, out) if check else None)

    case.check = both
    return case


# a refused study.db opened by the reader with its WAL still held by the creating engine
# may be checkpointed: that case checks only where the reports went
CASES = [c if c.exits != (2,) or c.id == "report-study-escapes-out" else _and_kept(c)
         for c in _cases()]  # fmt: skip


@pytest.mark.parametrize("case", params(CASES))
def test_hostile(case, tmp_path):
    assert verdict(case, tmp_path) is None


# --- dedicated: the repair keeps every completed trial --------------------------------------


def test_cut_journal_resumes_without_losing_a_trial(tmp_path):
    """Cut mid-record halfway through, resume: the cut tail is in the side file, the
    journal loads, every trial completed before the cut is kept as it was, and the run
    completes the rest."""
    data = journal_bytes()
    cut = len(data) // 2
    j = tmp_path / "study.journal"
    j.write_bytes(data[:cut])
    assert data[cut - 1 : cut] != b"\n", "the cut must fall inside a record"
    before = done(j)
    out = run(tmp_path, f"journal://{j}")
    assert out.code == 0, out.stderr + out.error
    offset = data.rindex(b"\n", 0, cut) + 1  # the start of the cut record
    side = tmp_path / f"study.journal.partial-{offset}"
    assert side.read_bytes() == data[offset:cut] and j.read_bytes()[:offset] == data[:offset]
    after = done(j)
    assert all(after.get(n) == v for n, v in before.items()), (before, after)
    assert len(before) < len(after) == POINTS
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "partial" in lines[0] and str(j) in lines[0], out.stderr


def test_no_password_in_the_study(tmp_path):
    """A config whose storage URL carries a password: the study keeps none of it."""
    from search.config import loads_config
    from search.run import run_study
    from tests.conftest import load_study

    cfg = loads_config(CFG + f'[storage]\nurl = "{UNREACHABLE_PG}"\n', name=STUDY)
    url = f"sqlite:///{tmp_path}/s.db"
    res = run_study(cfg, storage=url, n_trials=1, out_dir=tmp_path, progress=False)
    study = load_study(url, STUDY)
    store = study._storage  # Optuna 5: a study's system attributes only through its storage
    blobs = [study.user_attrs, store.get_study_system_attrs(study._study_id)]
    blobs += [x for t in study.trials for x in (t.user_attrs, t.system_attrs, t.params)]
    text = json.dumps(blobs, default=str) + (tmp_path / STUDY / "best.json").read_text()
    assert "config_source" in study.user_attrs and "127.0.0.1:1/nothing" in text
    assert PASSWORD not in text
    assert res.total == 1


def test_redact():
    from search.storage import redact

    toml = f'[storage]\nurl = "postgresql+psycopg://u:{PASSWORD}@h:5432/db"  # mail me@x\n'
    assert redact(toml) == toml.replace(PASSWORD, "***")
    for keep in ("postgresql://u@h/db", "postgresql://h:5432/db", "journal:///a/b:c", "x@y:z"):
        assert redact(keep) == keep


RACE = """
import os, sys, time, optuna
from search.storage import open_storage
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.001)
optuna.create_study(study_name="x", storage=open_storage(sys.argv[1]), load_if_exists=True)
"""


def test_two_processes_create_one_new_sqlite_file(tmp_path):
    """They race on the new file's tables (IntegrityError on alembic_version, "table already
    exists"); every one opens it."""
    import subprocess
    import sys

    from tests.conftest import load_study

    url, go = f"sqlite:///{tmp_path}/new.db", tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", RACE, url, str(go)],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )  # fmt: skip
        for _ in range(2)
    ]
    for p in procs:  # all imported: then at once
        assert p.stdout.readline() == "ready\n", p.communicate()[1]
    go.touch()
    errors = [p.communicate(timeout=60)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errors
    assert load_study(url, "x").study_name == "x"


def test_repair_waits_for_the_journal_lock(tmp_path):
    """A writer holding Optuna's journal lock may be mid-record: no repair until it lets go."""
    import threading

    from optuna.storages.journal import JournalFileSymlinkLock

    from search.storage import repair_journal

    data = journal_bytes()
    j = tmp_path / "study.journal"
    j.write_bytes(data[:-40])
    writer = JournalFileSymlinkLock(str(j))
    writer.acquire()
    done: list = []
    th = threading.Thread(
        target=lambda: done.append(repair_journal(j, JournalFileSymlinkLock(str(j))))
    )
    th.start()
    th.join(timeout=1.0)
    assert th.is_alive() and j.read_bytes() == data[:-40], "repaired under another's lock"
    with j.open("ab") as f:  # the writer finishes its record meanwhile
        f.write(data[-40:])
    writer.release()
    th.join(timeout=30)
    assert done == [None] and j.read_bytes() == data  # whole again: nothing set aside
    assert not list(tmp_path.glob("*.partial-*"))
