"""Checkpoint names and directories (torch-free, so the CLI checks them fast).

``train`` writes to :func:`user_checkpoint_dir` (``$HWFIRST_CHECKPOINTS``, else
``platformdirs.user_data_dir("hwfirst")/checkpoints``), never into the package;
loading looks there first, then in the shipped ``models/checkpoints``.
"""

from __future__ import annotations

import os
from pathlib import Path

from .modelspec import DEFAULT_SLOPE, ModelSpec

SHIPPED_DIR = Path(__file__).parent / "checkpoints"  # read-only package data
CHECKPOINTS_ENV = "HWFIRST_CHECKPOINTS"


def user_checkpoint_dir() -> Path:
    """Where ``train`` writes: ``$HWFIRST_CHECKPOINTS``, else the user data directory."""
    env = os.environ.get(CHECKPOINTS_ENV)
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_data_dir("hwfirst")) / "checkpoints"


def checkpoint_dirs(directory: str | Path | None = None) -> list[Path]:
    """Where loading looks, in order: ``directory`` (default: the user's), then the shipped."""
    first = user_checkpoint_dir() if directory is None else Path(directory)
    if first.exists() and not first.is_dir():
        what = "checkpoints"
        if directory is None and os.environ.get(CHECKPOINTS_ENV):
            what = f"${CHECKPOINTS_ENV}"
        raise ValueError(f"{what} must be a directory, but {str(first)!r} is a file")
    return [first] if first.resolve() == SHIPPED_DIR.resolve() else [first, SHIPPED_DIR]


def checkpoint_stem(
    name: str,
    dataset: str,
    activation: str,
    qat: bool = False,
    *,
    slope: float = DEFAULT_SLOPE,
    seed: int = 0,
) -> str:
    """``jsc-s_digits16_relu``, ``jsc-toy_digits16_leaky_relu_s0.125_seed3``, ``..._qat``.

    jsc-tiny has no activation, so no activation or slope; the slope (Python's
    shortest round-tripping ``repr``) only for leaky_relu; the seed only when not 0.
    """
    spec = ModelSpec(name, 1, 1, activation, slope)
    act = ""
    if spec.has_activation:
        act = f"_{activation}" + (f"_s{float(slope)!r}" if activation == "leaky_relu" else "")
    seed_part = f"_seed{seed}" if seed != 0 else ""
    return f"{name}_{dataset}{act}{seed_part}{'_qat' if qat else ''}"


def find_checkpoint(stem: str, directory: str | Path | None = None) -> Path | None:
    """``STEM.pt`` in the first of :func:`checkpoint_dirs` that has it."""
    for d in checkpoint_dirs(directory):
        if (d / f"{stem}.pt").is_file():
            return d / f"{stem}.pt"
    return None
