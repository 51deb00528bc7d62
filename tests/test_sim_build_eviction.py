"""The simulation build cache keeps only the most recently used builds."""

import fcntl
import os
import time
from pathlib import Path

from hdl.rtlsim.runner import STAMP, evict


def _fake_build(root: Path, name: str, age: float) -> Path:
    d = root / name
    d.mkdir()
    (d / STAMP).write_text("{}")
    t = time.time() - age
    os.utime(d / STAMP, (t, t))
    return d


def test_keeps_the_most_recently_used(tmp_path: Path) -> None:
    builds = [_fake_build(tmp_path, f"top-{k}", age=7200 + 60 * k) for k in range(6)]
    gone = evict(tmp_path, keep=2, min_age=3600)
    assert sorted(gone) == sorted(builds[2:])
    assert [d.exists() for d in builds] == [True, True, False, False, False, False]


def test_spares_recent_and_locked_builds(tmp_path: Path) -> None:
    old = [_fake_build(tmp_path, f"old-{k}", age=7200 + k) for k in range(3)]
    recent = _fake_build(tmp_path, "recent", age=10)
    with open(tmp_path / f".{old[2].name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process is building it
        gone = evict(tmp_path, keep=0, min_age=3600)
    assert gone == old[:2]
    assert recent.exists() and old[2].exists()


def test_a_failed_build_without_stamp_ages_by_its_directory(tmp_path: Path) -> None:
    d = tmp_path / "broken"
    d.mkdir()
    t = time.time() - 7200
    os.utime(d, (t, t))
    assert evict(tmp_path, keep=0, min_age=3600) == [d]
