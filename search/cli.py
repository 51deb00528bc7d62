"""``python -m search``: ``run CONFIG``, ``report STORAGE --study NAME``, ``verify``, ``front``
and ``study``.

Bad input prints one line naming the option or config key and what is allowed,
and exits 2 (``qspec.cli``); reports are written atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hdl.targets import TARGET_NAMES
from qspec.cli import (
    CliError,
    OneLineParser,
    Terminated,
    int_option,
    name_option,
    option_error,
    run_cli,
    seconds_option,
)
from qspec.files import check_writable_dir
from qspec.limits import MAX_RANDOM_CODES, MAX_SAMPLES, MAX_SEED, MAX_SEEDS, MAX_TRIALS, max_workers
from qspec.names import NAME

from .config import load_config
from .strategies import STRATEGIES

PROG = "python -m search"
# verify_network's parameters (of a ParamError) -> the `search verify` options that set them
VERIFY_OPTIONS = {
    "sim": "--sim", "samples": "--samples", "random_codes": "--random", "seed": "--seed",
    "netlist": "--netlist",
}  # fmt: skip


def _parser() -> OneLineParser:
    p = OneLineParser(prog=PROG, description="Hardware-aware quantisation search on Optuna.")
    sub = p.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    r = sub.add_parser("run", help="run (or resume) a study from a TOML config")
    r.add_argument("config", help="search/configs/<name>.toml")
    r.add_argument("--strategy", choices=list(STRATEGIES), help="override strategy.name")
    r.add_argument(
        "--trials", type=int_option("--trials", 1, MAX_TRIALS), help="total trial budget"
    )
    r.add_argument("--timeout", type=seconds_option("--timeout"), help="seconds for this run")
    r.add_argument(
        "--storage", help="sqlite:///FILE, journal:///FILE, postgresql://... or a file path"
    )
    r.add_argument(
        "--workers", type=int_option("--workers", 1, max_workers()), default=1,
        help="processes sharing the budget (default storage: a journal file)",
    )  # fmt: skip
    r.add_argument(
        "--study", type=name_option("--study", NAME),
        help="study name (default: storage.study, else the file stem)",
    )  # fmt: skip
    r.add_argument("--out", default="results", help="reports go to OUT/<study>/")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    c = sub.add_parser("compare", help="strategies x seeds on one space, vs brute force")
    c.add_argument("config", help="search/configs/<name>.toml")
    c.add_argument("--strategies", default="brute_force,tpe,random", help="comma-separated")
    c.add_argument(
        "--seeds", type=int_option("--seeds", 1, MAX_SEEDS), default=5, help="runs per strategy"
    )
    c.add_argument(
        "--trials", type=int_option("--trials", 1, MAX_TRIALS), help="per run (default: space)"
    )
    c.add_argument("--storage", help="default: OUT/<study>-compare/study.db")
    c.add_argument("--out", default="results", help="results go to OUT/<study>-compare/")
    c.add_argument("--no-progress", action="store_true", help="no progress bars")
    g = sub.add_parser("report", help="rewrite the reports of a stored study")
    g.add_argument("storage", help="sqlite:///FILE, postgresql://... or a .db file path")
    g.add_argument("--study", required=True, help="the study name")
    g.add_argument("--out", default="results", help="reports go to OUT/<study>/")
    g.add_argument("--no-export", action="store_true", help="skip rebuilding the best Verilog")
    _add_verify(sub)
    f = sub.add_parser(
        "front", help="accuracy-vs-LUT-eq Pareto front of one or more studies (PNG + CSV)"
    )
    f.add_argument("results", nargs="+", metavar="RESULTS_DIR", help="results/<study> dirs")
    f.add_argument("--out", help="the PNG (default: RESULTS_DIR/front.png, the first one)")
    f.add_argument("--csv", help="the front points (default: RESULTS_DIR/front.csv)")
    f.add_argument("--reference", help="external points: source,benchmark,accuracy,lut_eq")
    # forwarded to python -m studies.leaky by main() before this parser sees its options
    sub.add_parser("study", help="LeakyReLU study -> docs/leaky_study.md (studies.leaky)")
    return p


def _add_verify(sub) -> None:
    v = sub.add_parser(
        "verify",
        help="simulate a finished study's best design on the test split (hdl verify network)",
    )
    v.add_argument(
        "--config", help="the study's TOML config (default: search/configs/default.toml)"
    )
    v.add_argument("--study-dir", help="results/<study> (holds best.json; default: OUT/<study>)")
    v.add_argument("--out", default="results", help="with --config: results are in OUT/<study>/")
    v.add_argument("--trial", type=int_option("--trial"), help="which best trial (default: all)")
    v.add_argument("--sim", choices=["verilator", "icarus"], help="default: verilator if usable")
    v.add_argument(
        "--samples",
        type=int_option("--samples", 0, MAX_SAMPLES),
        help="the first N test samples (all)",
    )
    v.add_argument(
        "--random", type=int_option("--random", 0, MAX_RANDOM_CODES), default=200,
        help="random codes (200)",
    )  # fmt: skip
    v.add_argument(
        "--stalls",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="random valid/ready stalls on both streams (default), else full rate only",
    )
    v.add_argument(
        "--seed", type=int_option("--seed", 0, MAX_SEED), default=1, help="stalls and random codes"
    )
    v.add_argument(
        "--netlist", choices=list(TARGET_NAMES),
        help="simulate the mapped netlist Yosys writes for this target (its cell models), "
        "not the RTL",
    )  # fmt: skip
    v.add_argument("--json", action="store_true", help="print one JSON object")


def _study_config(study_dir: Path, doc: dict):
    """The config stored with the study of ``study_dir`` (its dataset names the test split)."""
    import optuna

    from .run import config_of_study
    from .storage import local_file, open_storage

    urls = [doc.get("storage"), f"sqlite:///{(study_dir / 'study.db').resolve()}"]
    for url in (u for u in urls if u):
        path = local_file(url)
        if path is not None and not path.is_file():
            continue
        try:
            store = open_storage(url, read_only=True)
            study = optuna.load_study(study_name=doc["study"], storage=store)
            return config_of_study(study)
        except Exception:  # another storage may still know it
            continue
    raise CliError(
        f"{PROG}: error: --study-dir {str(study_dir)!r}: cannot open the study's storage "
        f"({doc.get('storage')}) to read its config; pass --config"
    )


def _best_designs(study_dir: Path, doc: dict, trial: int | None) -> list[tuple[int, Path]]:
    entries = doc.get("best") or []
    if not entries:
        raise CliError(f"{PROG}: error: {study_dir / 'best.json'}: no feasible best trial")
    if trial is not None:
        numbers = [e.get("trial") for e in entries]
        if trial not in numbers:
            raise CliError(
                f"{PROG}: error: --trial must be one of {', '.join(map(str, numbers))} "
                f"(the best trials in {study_dir / 'best.json'}), got {trial}"
            )
        entries = [e for e in entries if e.get("trial") == trial]
    out = []
    for e in entries:
        n, v = e.get("trial"), e.get("verilog")
        if not v:
            why = e.get("verilog_error") or "none was exported (search report --no-export?)"
            raise CliError(f"{PROG}: error: best trial {n} has no Verilog: {why}")
        path = Path(v)
        if not path.is_file():  # written relative to where the study ran: look in study_dir
            path = study_dir / "best" / f"trial_{n}" / Path(v).name
        if not path.is_file():
            raise CliError(f"{PROG}: error: best trial {n}: Verilog {v!r} not found")
        out.append((n, path))
    return out


def _test_split(cfg, net):
    """The test split's input codes (quantised as the host does) and labels for ``net``."""
    from models.data import load_dataset
    from qspec.vectors import InputSet

    ds = load_dataset(cfg.model.dataset, cfg.model.data_file)
    return InputSet.of(net, ds.name, "test", ds.test.x, ds.test.y)


def _verify(args) -> int:
    """``hdl verify network`` on each best design of a finished study (``best.json``)."""
    from hdl.design import load_design
    from hdl.rtlsim import SimulationError, cocotb_problem, format_result, verify_network

    problem = cocotb_problem()
    if problem is not None:
        raise CliError(f"{PROG}: error: {problem}")
    cfg = None
    if args.config is not None or args.study_dir is None:
        default = Path(__file__).resolve().parent / "configs" / "default.toml"
        cfg = load_config(args.config or default)
    study_dir = Path(args.study_dir) if args.study_dir else Path(args.out) / cfg.storage.study
    best_file = study_dir / "best.json"
    if not best_file.is_file():
        option = "--study-dir" if args.study_dir else "--config"
        raise CliError(
            f"{PROG}: error: {option}: no {best_file}: run `python -m search run` "
            "(or `python -m search report`) first"
        )
    try:
        doc = json.loads(best_file.read_text())
    except (OSError, ValueError) as e:
        raise CliError(f"{PROG}: error: {best_file}: cannot read: {e}") from None
    designs = _best_designs(study_dir, doc, args.trial)
    if cfg is None:
        cfg = _study_config(study_dir, doc)
    results, failed = [], False
    for n, path in designs:
        try:
            inputs = _test_split(cfg, load_design(path).net)
            r = verify_network(
                path, sim=args.sim, inputs=inputs, samples=args.samples,
                random_codes=args.random, stalls=args.stalls, seed=args.seed,
                netlist=args.netlist,
            )  # fmt: skip
        except SimulationError as e:
            failed = True
            first = str(e).splitlines()[0]
            results.append({"trial": n, "passed": False, "error": first})
            if not args.json:
                print(f"{PROG}: trial {n}: simulation failed: {first}", file=sys.stderr)
            continue
        except ValueError as e:
            raise option_error(e, VERIFY_OPTIONS) from None
        failed |= not r.passed
        results.append({"trial": n, **r.to_dict()})
        if not args.json:
            print(f"study {doc.get('study')}, best trial {n}:")
            print(format_result(r))
    if args.json:
        print(json.dumps({"study": doc.get("study"), "study_dir": str(study_dir),
                          "passed": not failed, "results": results}))  # fmt: skip
    return 1 if failed else 0


def _front(args) -> int:
    from .front import run_front

    png, table, studies = run_front(args.results, args.out, args.csv, args.reference)
    for st in studies:
        print(f"{st.name}: {len(st.front)} front points of {len(st.points)} feasible trials")
    print(f"front: {png} {table}")
    return 0


def _summary(study, cfg, reports, console) -> None:
    """A table of the best trial(s) and where the results are."""
    from rich.table import Table

    from .records import metric_attrs
    from .report import best_trials
    from .scoring import Objective

    best = best_trials(study)
    names = Objective.of(cfg).names
    metrics = [m.name for m in cfg.metrics]
    table = Table(title=f"best of study {study.study_name} ({len(study.trials)} trials)")
    for col in ("trial", *names, *(m for m in metrics if m not in names)):
        table.add_column(col, overflow="fold")
    for t in best[:10]:
        vals = [f"{v:.4g}" for v in t.values]
        ms = [metric_attrs(t.user_attrs).get(m) for m in metrics if m not in names]
        table.add_row(str(t.number), *vals, *("-" if v is None else f"{v:.4g}" for v in ms))
    if not best:
        table.add_row("-", *["-"] * (len(table.columns) - 1))
    console.print(table)
    for t in best[:10]:  # the design, one line per trial (the full config is in best.json)
        design = " ".join(f"{k}={v}" for k, v in t.params.items()) or "(the space has one point)"
        console.print(f"trial {t.number}: {design}", soft_wrap=True)
    if reports is not None:
        files = "trials.csv, best.json, pareto.png, history.png"
        console.print(f"results: {reports.out_dir}/ ({files})")
        for v in reports.verilog:
            console.print(f"best design Verilog: {v}")
        for why in reports.verilog_errors:  # best.json holds it too; stdout may be unread
            print(f"{PROG}: warning: best design has no Verilog: {why}", file=sys.stderr)


def _run(args) -> int:
    from rich.console import Console

    from .run import run_study
    from .storage import open_storage, redact

    cfg = load_config(args.config)
    check_writable_dir("--out", args.out)
    kwargs = dict(
        strategy=args.strategy, n_trials=args.trials, timeout=args.timeout, storage=args.storage,
        study_name=args.study, out_dir=args.out, progress=not args.no_progress,
    )  # fmt: skip
    died = 0
    if args.workers > 1:
        from .workers import run_workers

        many = run_workers(cfg, args.workers, **kwargs)
        result, died = many.run, many.died
    else:
        result = run_study(cfg, **kwargs)
    import optuna

    console = Console(stderr=False)
    if died:
        console.print(f"{died} worker(s) died; rerun the same command to redo their trials")
    console.print(
        f"{result.strategy}: {result.ran} trials run, {result.total} in the study "
        f"(space: {result.space_size} points), storage {redact(result.storage)}"
    )
    study = optuna.load_study(study_name=result.study, storage=open_storage(result.storage))
    _summary(study, cfg, result.reports, console)
    failed = _all_failed(study)
    if failed:
        print(f"{PROG}: {failed}", file=sys.stderr)
        return 1
    return 1 if died else 0  # the study is consistent, but a worker's trials need a rerun


def _all_failed(study) -> str | None:
    """``all N trials failed: <first reason>`` when no evaluated trial succeeded."""
    from optuna.trial import TrialState

    from .records import ERROR_ATTR, counted

    done = [t for t in study.get_trials(deepcopy=False) if counted(t)]
    if not done or any(t.state != TrialState.FAIL for t in done):
        return None
    first = min(done, key=lambda t: t.number).user_attrs.get(ERROR_ATTR, "no reason recorded")
    return f"all {len(done)} trials failed: {str(first).splitlines()[0]}"


def _report(args) -> int:
    import optuna
    from rich.console import Console

    from .report import write_reports
    from .run import config_of_study
    from .storage import local_file, open_storage, storage_url
    from .trial import context_of

    url = storage_url(args.storage, args.study, args.out)  # also: OUT/<study> inside OUT
    path = local_file(url)
    if path is not None and not path.exists():
        raise CliError(f"{PROG}: error: STORAGE: no such database file: {args.storage}")
    store = open_storage(url, read_only=True)  # a report never writes its input
    names = [s.study_name for s in optuna.get_all_study_summaries(store)]
    if args.study not in names:
        raise CliError(
            f"{PROG}: error: --study {args.study!r} is not in {args.storage}; "
            f"allowed: {', '.join(names) or '(no studies)'}"
        )
    study = optuna.load_study(study_name=args.study, storage=store)
    cfg = config_of_study(study)
    check_writable_dir("--out", args.out)
    context = None if args.no_export else context_of(cfg)
    reports = write_reports(
        study, cfg, Path(args.out) / args.study, context=context, storage=url,
        export=not args.no_export,
    )  # fmt: skip
    _summary(study, cfg, reports, Console())
    return 0


def _compare(args) -> int:
    from rich.console import Console

    from .compare import compare, parse_strategies
    from .storage import redact

    try:
        strategies = parse_strategies(args.strategies)
    except ValueError as e:
        raise CliError(f"{PROG}: error: {e}") from None
    cfg = load_config(args.config)
    check_writable_dir("--out", args.out)
    res = compare(
        cfg, strategies, args.seeds, n_trials=args.trials, storage=args.storage,
        out_dir=args.out, progress=not args.no_progress,
    )  # fmt: skip
    console = Console()
    console.print(res.files["markdown"].read_text())
    files = "compare.md, summary.json, curves.csv, trials_to_optimum.csv, best_so_far.png"
    console.print(f"results: {res.out_dir}/ ({files}); storage {redact(res.storage)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    def body() -> int:
        words = sys.argv[1:] if argv is None else list(argv)
        if words[:1] == ["study"]:  # a thin forwarder: the study is not part of the search
            from studies.leaky.cli import parser, run_from_args

            return run_from_args(parser(f"{PROG} study").parse_args(words[1:]))
        args = _parser().parse_args(words)
        if args.command == "compare":
            return _compare(args)
        if args.command == "verify":
            return _verify(args)
        if args.command == "front":
            return _front(args)
        return _run(args) if args.command == "run" else _report(args)

    from .storage import redact
    from .trial import ReferenceFailed

    def redacted() -> int:  # no error line shows a URL's password
        try:
            return body()
        except (CliError, ValueError) as e:
            raise CliError(redact(str(e)) or type(e).__name__) from None

    try:
        return run_cli(PROG, redacted)
    except ReferenceFailed as e:  # a tool failure before any trial: no study was created
        print(f"{PROG}: error: {redact(str(e).splitlines()[0])}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:  # Optuna has failed the running trial (no error: redone)
        why = "terminated" if isinstance(e, Terminated) else "interrupted"
        print(f"{PROG}: {why}; run the same command again to resume", file=sys.stderr)
        return 143 if isinstance(e, Terminated) else 130
