"""Shared pytest setup: hypothesis profiles (deterministic under CI); shared test helpers."""

import csv
import os
from pathlib import Path

from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile(
    "ci", deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
# `nox -s mutants` runs the fast qspec tests once per mutant: fewer, repeatable examples
settings.register_profile(
    "mutants",
    deadline=None,
    derandomize=True,
    max_examples=25,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("ci" if os.environ.get("CI") else "default")

# --- helpers shared by several test files (import them from tests.conftest) -------------

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "search" / "configs"  # the shipped search configs
# fingerprints of the shipped configs: studies made by earlier versions resume only while
# these hold (default changed once, on purpose, when it gained [training])
PINNED_FINGERPRINTS = {
    "default": "ba63de63411fb85a",
    "smoke": "1fd447573e862566",
    "seed_lab3": "bb1f6acefb2d7ed8",
}


def csv_rows(path: Path) -> list[dict[str, str]]:
    """A CSV report's rows, as ``csv.DictReader`` reads them."""
    with path.open() as f:
        return list(csv.DictReader(f))


def load_study(url: str, name: str):
    """The Optuna study ``name`` in the storage at ``url`` (any form ``search`` accepts)."""
    import optuna

    from search.storage import open_storage

    return optuna.load_study(study_name=name, storage=open_storage(url))
