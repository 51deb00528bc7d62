"""``python -m search front``: the accuracy-vs-LUT-eq Pareto front of one or more studies.

Each RESULTS_DIR is a study's report directory (``trials.csv``, from ``search run`` or
``search report``).  The front is chosen on the integer spec's *validation* accuracy
(``val_accuracy``; a study of an earlier version: ``accuracy``, measured on its
``model.split``), so choosing it never looks at the test split; each front point also shows
its ``test_accuracy``.  Only complete, feasible trials with a ``lut_eq`` take part.
``--reference`` overlays external points (a CSV with ``source,benchmark,accuracy,lut_eq``;
``bench/reference_fronts.csv`` holds HGQ2+da4ml's).  Every input is read and checked before
anything is written: a bad one is a one-line error and no file.
"""

from __future__ import annotations

import csv
import io
import math
import sys
from dataclasses import dataclass
from pathlib import Path

from qspec.files import ReadError, atomic_write_many, check_output, read_text

LUT = "lut_eq"
VAL = "val_accuracy"
TEST = "test_accuracy"
REFERENCE_COLUMNS = ("source", "benchmark", "accuracy", "lut_eq")
FRONT_COLUMNS = ("study", "trial", "lut_eq", "val_accuracy", "test_accuracy")


class FrontError(ValueError):
    """A bad input: one line naming it."""


@dataclass(frozen=True)
class Point:
    study: str
    trial: int
    lut_eq: float
    val: float
    test: float | None


@dataclass(frozen=True)
class Study:
    name: str
    points: tuple[Point, ...]  # every complete feasible trial
    front: tuple[Point, ...]  # by lut_eq ascending
    val_column: str  # val_accuracy, or accuracy for an earlier version's study


def _float(v: str | None) -> float | None:
    try:
        x = float(v) if v not in (None, "") else None
    except ValueError:
        return None
    return x if x is not None and math.isfinite(x) else None


def pareto(points: list[Point]) -> tuple[Point, ...]:
    """The points no other beats on both val accuracy (higher) and LUT-eq (lower)."""
    out: list[Point] = []
    for p in sorted(points, key=lambda p: (p.lut_eq, -p.val, p.trial)):
        if not out or p.val > out[-1].val:
            out.append(p)
    return tuple(out)


def _csv(path: Path, what: str) -> list[dict[str, str]]:
    try:
        text = read_text(path, what)
    except ReadError as e:
        raise FrontError(str(e)) from None
    return list(csv.DictReader(io.StringIO(text)))


def read_study(directory: str | Path, label: str | None = None) -> Study:
    """A results directory's trials (``trials.csv``) and its front, named ``label`` (default:
    the directory's name, which is the study's)."""
    d = Path(directory)
    if not d.is_dir():
        raise FrontError(f"RESULTS_DIR {str(d)!r} is not a directory")
    path = d / "trials.csv"
    if not path.is_file():
        raise FrontError(
            f"RESULTS_DIR {str(d)!r} is not a study's results directory (no trials.csv; "
            "python -m search run or report writes one)"
        )
    rows = _csv(path, "trials.csv")
    head = rows[0].keys() if rows else ()
    if rows and (LUT not in head or not ({VAL, "accuracy"} & set(head))):
        raise FrontError(
            f"{path}: needs the columns {LUT} and {VAL} (a study with hardware.enabled = true)"
        )
    val = VAL if VAL in head else "accuracy"
    name = label or d.resolve().name
    points = []
    for r in rows:
        if r.get("state") != "COMPLETE" or (_float(r.get("violation")) or 0.0) > 0:
            continue
        lut, acc = _float(r.get(LUT)), _float(r.get(val))
        if lut is None or acc is None:
            continue
        points.append(Point(name, int(r["number"]), lut, acc, _float(r.get(TEST))))
    return Study(name, tuple(points), pareto(points), val)


def read_reference(path: str | Path) -> list[dict[str, object]]:
    """External points: ``source,benchmark,accuracy,lut_eq`` rows."""
    p = Path(path)
    if not p.is_file():
        raise FrontError(f"--reference {str(p)!r} is not a file")
    rows = _csv(p, "--reference")
    if not rows or set(REFERENCE_COLUMNS) - set(rows[0]):
        raise FrontError(f"--reference {str(p)!r} needs the columns {','.join(REFERENCE_COLUMNS)}")
    out = []
    for i, r in enumerate(rows, 2):
        acc, lut = _float(r["accuracy"]), _float(r["lut_eq"])
        if acc is None or lut is None or not 0 <= acc <= 1 or lut <= 0:
            raise FrontError(f"--reference {str(p)!r} line {i}: accuracy in [0, 1], lut_eq > 0")
        out.append({"source": r["source"], "benchmark": r["benchmark"], "accuracy": acc,
                    "lut_eq": lut})  # fmt: skip
    return out


def front_csv(studies: list[Study]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(FRONT_COLUMNS)
    for s in studies:
        for p in s.front:
            w.writerow([s.name, p.trial, p.lut_eq, p.val, "" if p.test is None else p.test])
    return buf.getvalue()


def plot_front(studies: list[Study], reference: list[dict[str, object]]) -> bytes:
    """The fronts (val: filled, test: hollow, same colour), every trial faint, the
    reference points as crosses; a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    luts: list[float] = []
    for i, s in enumerate(studies):
        c = colours[i % len(colours)]
        ax.scatter([p.lut_eq for p in s.points], [p.val for p in s.points], s=8, color=c,
                   alpha=0.2, linewidths=0)  # fmt: skip
        xs, vs = [p.lut_eq for p in s.front], [p.val for p in s.front]
        luts += xs
        ax.step(xs, vs, where="post", color=c, marker="o", label=f"{s.name} (val, chosen on)")
        tests = [(p.lut_eq, p.test) for p in s.front if p.test is not None]
        if tests:
            ax.plot(*zip(*tests, strict=True), color=c, ls="--", marker="o", mfc="none",
                    label=f"{s.name} (test)")  # fmt: skip
    groups: dict[str, list[dict[str, object]]] = {}
    for r in reference:
        groups.setdefault(f"{r['source']} {r['benchmark']}", []).append(r)
    markers = "xP*+D^"
    for j, (label, rs) in enumerate(groups.items()):
        xs = [float(r["lut_eq"]) for r in rs]  # type: ignore[arg-type]
        luts += xs
        ax.plot(xs, [r["accuracy"] for r in rs], ls=":", color="black", marker=markers[j % 6],
                label=label)  # fmt: skip
    if luts and min(luts) > 0 and max(luts) / min(luts) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("LUT-equivalents")
    ax.set_ylabel("accuracy (integer spec)")
    ax.set_title("accuracy vs LUT-eq: Pareto front chosen on validation accuracy")
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def run_front(dirs: list[str], out: str | None, csv_out: str | None,
              reference: str | None) -> tuple[Path, Path, list[Study]]:  # fmt: skip
    """Read everything, then write the PNG and CSV (default: in the first RESULTS_DIR)."""
    names = [Path(d).resolve().name for d in dirs]
    # two studies of one name (e.g. results/a/x and results/b/x): label them by parent too
    labels = [
        "/".join(Path(d).resolve().parts[-2:]) if names.count(n) > 1 else n
        for d, n in zip(dirs, names, strict=True)
    ]
    studies = [read_study(d, label) for d, label in zip(dirs, labels, strict=True)]
    ref = read_reference(reference) if reference is not None else []
    png = Path(out) if out else Path(dirs[0]) / "front.png"
    table = Path(csv_out) if csv_out else Path(dirs[0]) / "front.csv"
    for option, p in (("--out", png), ("--csv", table)):
        try:
            check_output(p)
        except ValueError as e:
            raise FrontError(f"{option}: {e}") from None
        if not p.parent.is_dir():
            raise FrontError(f"{option} {str(p)!r}: no directory {str(p.parent)!r}")
    for s in studies:
        if s.val_column != VAL:
            why = "an earlier version's study: the front is chosen on accuracy (its model.split)"
            print(f"warning: {s.name}: no {VAL} column ({why})", file=sys.stderr)
    atomic_write_many({png: plot_front(studies, ref), table: front_csv(studies)})
    return png, table, studies
