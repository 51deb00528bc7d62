"""Hostile counts and durations: every count and time a user gives is bounded (issue #16).

Zero, negative, huge, ``inf``, ``nan`` and non-numbers get one line naming the option or
key (the bounds live in ``qspec.limits``).  So that a missed bound cannot start a long
run, each case also makes the command fail right after its checks (a missing input, an
``--out`` that is a file): the check then sees the wrong option named, not a hang.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, ROOT
from tests.hostile import Case, Outcome, params, run_main, verdict

SPEC = ROOT / "verilog_out" / "specs" / "jsc-tiny_relu_8b.json"
BASE = (CONFIGS / "smoke.toml").read_text()
BAD_COUNTS = {"zero": "0", "negative": "-3", "huge": "10" * 15, "inf": "inf", "nan": "nan",
              "word": "many", "float": "2.5", "exp": "1e3"}  # fmt: skip
BAD_SECONDS = {"zero": "0", "negative": "-1", "inf": "inf", "nan": "nan", "word": "soon",
               "overflow": "1e999", "neg-inf": "-inf"}  # fmt: skip


def names(*words: str):
    def check(tmp: Path, out: Outcome) -> str | None:
        missing = [w for w in words if w not in out.stderr]
        return f"stderr does not name {missing}: {out.stderr.strip()[:200]!r}" if missing else None

    return check


def cli(name: str, *argv: str, blocker: bool = False):
    """``run_main(name, argv)``; ``{tmp}`` is the case's directory, ``{file}`` a plain file."""

    def run(tmp: Path) -> Outcome:
        (tmp / "file").write_text("x")
        args = [a.format(tmp=tmp, file=tmp / "file") for a in argv]
        return run_main(name, args, cwd=tmp)

    return run


CASES: list[Case] = []


def add(option: str, values: dict[str, str], make, skip=()):
    for key, v in values.items():
        if key not in skip:
            CASES.append(
                Case("bounds", f"{make.__name__}{option}-{key}", make(v), check=names(option))
            )


# --- search ---------------------------------------------------------------------------------

MISSING = "{tmp}/missing.toml"  # argparse checks the option before the config is read


def search_run_workers(v):
    return cli("search", "run", MISSING, "--workers", v)


def search_run_trials(v):
    return cli("search", "run", MISSING, "--trials", v)


def search_run_timeout(v):
    return cli("search", "run", MISSING, "--timeout", v)


def search_compare_seeds(v):
    return cli("search", "compare", MISSING, "--seeds", v)


def search_compare_trials(v):
    return cli("search", "compare", MISSING, "--trials", v)


def search_verify_random(v):
    return cli("search", "verify", "--study-dir", "{tmp}/none", "--random", v)


def search_verify_seed(v):
    return cli("search", "verify", "--study-dir", "{tmp}/none", "--seed", v)


add("--workers", BAD_COUNTS | {"many-cpus": "10000"}, search_run_workers)
add("--trials", BAD_COUNTS | {"over-max": "1000001"}, search_run_trials)
add("--timeout", BAD_SECONDS, search_run_timeout)
add("--seeds", BAD_COUNTS | {"over-max": "1001"}, search_compare_seeds)
add("--trials", BAD_COUNTS | {"over-max": "1000001"}, search_compare_trials)
add("--random", BAD_COUNTS | {"over-max": "1000001"}, search_verify_random, skip=("zero",))
add("--seed", {"negative": "-1", "huge": "1" + "0" * 30, "word": "x"}, search_verify_seed)


def _config(section: str):
    """A config whose ``section`` holds the bad value; ``storage.url = 5`` fails after it."""

    def make(v):
        def run(tmp: Path) -> Outcome:
            cfg = tmp / "cfg.toml"
            text = BASE.replace('[strategy]\nname = "brute_force"', '[strategy]\nname = "tpe"')
            table, key = section.split(".")
            anchor = 'name = "tpe"' if table == "strategy" else 'impl = "adder_tree"'
            text = text.replace(anchor, f"{anchor}\n{key} = {v}")
            cfg.write_text(text + "\n[storage]\nurl = 5\n")
            return run_main("search", ["run", str(cfg), "--out", str(tmp / "o")])

        return run

    make.__name__ = "config-"
    return make


TOML_COUNTS = {"zero": "0", "negative": "-3", "huge": "1_000_000_000_000", "inf": "inf",
               "nan": "nan", "word": '"many"', "float": "2.5"}  # fmt: skip
TOML_SECONDS = {"zero": "0", "negative": "-1", "inf": "inf", "nan": "nan", "word": '"soon"',
                "neg-inf": "-inf", "bool": "true"}  # fmt: skip
add("strategy.n_trials", TOML_COUNTS | {"over-max": "1000001"}, _config("strategy.n_trials"))
add("strategy.timeout", TOML_SECONDS, _config("strategy.timeout"))
add("hardware.timeout", TOML_SECONDS, _config("hardware.timeout"))


# --- hdl ------------------------------------------------------------------------------------


def hdl_verify_random(v):
    return cli("hdl", "verify", "network", "{tmp}/none.json", "--random", v)


def hdl_verify_samples(v):
    return cli("hdl", "verify", "network", "{tmp}/none.json", "--samples", v)


def hdl_verify_seed(v):
    return cli("hdl", "verify", "network", "{tmp}/none.json", "--seed", v)


def hdl_synth_timeout(v):
    return cli("hdl", "synth", "{tmp}/none.v", "--timeout", v)


def hdl_export_stages(v):
    return cli("hdl", "export", "network", str(SPEC), "--stages", v, "--out", "{file}")


def hdl_leaky_lanes(v):
    return cli("hdl", "export", "leaky-relu", "--impl", "shift", "--width", "8",
               "--frac-width", "4", "--shift", "2", "--lanes", v, "--out", "{file}")  # fmt: skip


def hdl_leaky_stages(v):
    return cli("hdl", "export", "leaky-relu", "--impl", "shift", "--width", "8",
               "--frac-width", "4", "--shift", "2", "--lanes", "1", "--stages", v,
               "--out", "{file}")  # fmt: skip


def hdl_leaky_width(v):
    return cli("hdl", "export", "leaky-relu", "--impl", "shift", "--width", v,
               "--frac-width", "4", "--shift", "2", "--out", "{file}")  # fmt: skip


def hdl_leaky_slope(v):
    return cli("hdl", "export", "leaky-relu", "--impl", "mult", "--width", "8",
               "--frac-width", "4", "--slope", v, "--out", "{file}")  # fmt: skip


add("--random", BAD_COUNTS | {"over-max": "1000001"}, hdl_verify_random, skip=("zero",))
add(
    "--samples",
    {"negative": "-1", "word": "x", "inf": "inf", "huge": "10" * 15},
    hdl_verify_samples,
)
add("--seed", {"negative": "-1", "huge": "1" + "0" * 30, "word": "x"}, hdl_verify_seed)
add("--timeout", BAD_SECONDS, hdl_synth_timeout)
add("--stages", {"negative": "-1", "huge": "10" * 15, "nan": "nan", "word": "x"}, hdl_export_stages)
add("--lanes", {"zero": "0", "negative": "-2", "huge": "10" * 15, "word": "x"}, hdl_leaky_lanes)
add("--stages", {"negative": "-1", "huge": "10" * 15, "word": "x"}, hdl_leaky_stages)
add("--width", {"zero": "0", "huge": "10" * 15, "word": "x"}, hdl_leaky_width)
add("--slope", {"inf": "inf", "nan": "nan", "huge": "1e300", "word": "x"}, hdl_leaky_slope)


# --- models and the LeakyReLU study -----------------------------------------------------------


def models_train_epochs(v):  # --checkpoints is a file: training never starts
    return cli("models", "train", "jsc-tiny", "--epochs", v, "--checkpoints", "{file}")


def models_train_seed(v):
    return cli("models", "train", "jsc-tiny", "--seed", v, "--checkpoints", "{file}")


def models_bits(v):
    return cli("models", "eval", "jsc-tiny", "--bits", v, "--data-file", "{tmp}/none.csv")


def models_slope(v):
    return cli("models", "eval", "jsc-toy", "--activation", "leaky_relu", "--slope", v,
               "--data-file", "{tmp}/none.csv")  # fmt: skip


add("--epochs", BAD_COUNTS | {"over-max": "100001"}, models_train_epochs)
add(
    "--seed",
    {"negative": "-1", "huge": "1" + "0" * 30, "word": "x", "float": "1.5"},
    models_train_seed,
)
add("--bits", {"zero": "0", "huge": "10" * 15, "word": "x", "nan": "nan"}, models_bits)
add("--slope", {"inf": "inf", "nan": "nan", "negative": "-0.5", "word": "x"}, models_slope)


def study(option: str):
    def make(v):  # --docs is a file: the study never starts
        return cli("studies.leaky", option, v, "--docs", "{file}")

    make.__name__ = "study"
    return make


for opt in ("--seeds", "--epochs", "--qat-epochs"):
    add(opt, BAD_COUNTS | {"over-max": "100001"}, study(opt))
add(
    "--hw-seeds",
    {"negative": "-1", "huge": "10" * 15, "word": "x", "inf": "inf"},
    study("--hw-seeds"),
)
add("--hw-budget", BAD_SECONDS, study("--hw-budget"))
add("--bits", {"zero": "0", "huge": "10" * 15, "word": "x"}, study("--bits"))


# --- valid values still get through (to the blocker after the checks) -----------------------

CASES += [
    Case("bounds", "valid-workers", search_run_workers("2"), check=names("missing.toml")),
    Case("bounds", "valid-timeout", search_run_timeout("3600"), check=names("missing.toml")),
    Case("bounds", "valid-seeds", search_compare_seeds("1000"), check=names("missing.toml")),
    Case("bounds", "valid-synth-timeout", hdl_synth_timeout("0.5"), check=names("none.v")),
    Case("bounds", "valid-hw-budget", study("--hw-budget")("1.5"), check=names("--docs")),
]


@pytest.mark.parametrize("case", params(CASES))
def test_hostile(case, tmp_path):
    assert verdict(case, tmp_path) is None


def test_case_ids_unique():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)
    json.dumps(ids)
