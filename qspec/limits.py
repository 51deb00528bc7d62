"""Upper bounds of the counts and durations a user may ask for (torch-free).

Each is generous for real use and stops a typo (``--random 10000000000``) from running
for days or exhausting memory; the CLIs and config readers import them from here.
"""

from __future__ import annotations

import math
import os
from typing import Any

from .errors import ParamError

WORKERS_PER_CPU = 4  # search run --workers: processes per CPU core
MAX_TRIALS = 1_000_000  # search --trials, strategy.n_trials
MAX_SEEDS = 1000  # search compare --seeds, studies.leaky --seeds
MAX_RANDOM_CODES = 1_000_000  # verify --random
MAX_SAMPLES = 10_000_000  # verify --samples (the test split is smaller anyway)
MAX_SEED = 2**32 - 1  # a random seed: what numpy and the simulators accept
MAX_EPOCHS = 100_000  # models train --epochs, studies.leaky --epochs/--qat-epochs


def max_workers() -> int:
    """``search run --workers`` at most: :data:`WORKERS_PER_CPU` per core."""
    return WORKERS_PER_CPU * (os.cpu_count() or 1)


def check_seconds(
    param: str, value: Any, *, none: bool = False, unit: str = "seconds"
) -> float | None:
    """A duration: a finite number > 0 of ``unit`` (or ``None`` when ``none``); else a
    one-line :class:`~qspec.errors.ParamError` naming ``param``."""
    if none and value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or not value > 0:
        raise ParamError(param, f"{param} must be a finite number of {unit} > 0, got {value!r}")
    return value
