"""What the LeakyReLU study runs: its variants, constants and :class:`StudyConfig`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

# defaults relative to the current directory (nox runs in the repository root)
DOCS_DIR = Path("docs")
JSON_PATH = Path("bench") / "results" / "leaky_study.json"
PAGE_NAME = "leaky_study.md"
STUDY_ENV = "HWFIRST_STUDY_DIR"

SLOPE = 0.3  # not a power of two
POW2_SLOPE = 0.25  # 2^-2, the power of two nearest 0.3 (in log2)
POW2_SHIFT = 2
MODELS = ("jsc-toy", "jsc-s")
BITS = (8, 6, 4)
SEEDS = 5
DATASET = "digits16"
CONFIDENCE = 0.95

# variant -> (trained activation, trained slope, leaky_impl, quantised slope, qat)
VARIANTS: dict[str, tuple[str, float | None, str | None, float | None, bool]] = {
    "relu": ("relu", None, None, None, False),
    "mult": ("leaky_relu", SLOPE, "mult", SLOPE, False),
    "shift_ptq": ("leaky_relu", SLOPE, "shift", POW2_SLOPE, False),
    "shift_trained": ("leaky_relu", POW2_SLOPE, "shift", POW2_SLOPE, False),
    "shift_qat": ("leaky_relu", SLOPE, "shift", POW2_SLOPE, True),
}
LABELS = {
    "relu": "ReLU (control)",
    "mult": "mult, trained 0.3",
    "shift_ptq": "shift 2^-2, trained 0.3 (PTQ)",
    "shift_trained": "shift 2^-2, trained 0.25",
    "shift_qat": "shift 2^-2, trained 0.3 + QAT",
}
# what a hardware row reports (attributes of the network's total, hdl.resources.Resources)
HW_KEYS = ("lut_eq", "lut4", "carries", "ffs", "dsps", "latency", "fmax_mhz")
SHIFT_VARIANTS = ("shift_ptq", "shift_trained", "shift_qat")
# (activation, slope) of each float network a seed needs
TRAININGS = (("relu", None), ("leaky_relu", SLOPE), ("leaky_relu", POW2_SLOPE))


@dataclass(frozen=True)
class StudyConfig:
    """What to run; ``epochs``/``patience`` are the float training, ``qat_*`` the fine-tuning."""

    models: tuple[str, ...] = MODELS
    seeds: int = SEEDS
    bits: tuple[int, ...] = BITS
    epochs: int = 200
    patience: int = 20
    qat_epochs: int = 40
    qat_patience: int = 10
    qat_lr: float = 1e-3
    hardware: bool = True
    hw_seeds: int = 1  # synthesise seeds 0 .. hw_seeds-1 of every (model, variant, bits)
    target: str = "ecp5"
    impl: str = "adder_tree"
    stages: int = 1  # registers per layer, so Fmax is measured between registers
    hw_budget: float | None = None  # seconds of synthesis; networks not started by then: skipped
    hw_timeout: float = 3600.0  # seconds per tool run (jsc-s layers exceed hdl's 600 s default)
    # models placed for Fmax: one jsc-s layer takes 10-30 min in nextpnr-ecp5 (WebAssembly)
    fmax_models: tuple[str, ...] = ("jsc-toy",)
    quick: bool = False

    def __post_init__(self) -> None:
        from models.modelspec import MODELS as KNOWN

        for m in self.models:
            if m not in KNOWN or m == "jsc-tiny":
                raise ValueError(f"--models: {m!r} is not a model with activations; allowed: "
                                 f"{', '.join(k for k in KNOWN if k != 'jsc-tiny')}")  # fmt: skip
        if not self.models:
            raise ValueError("--models must name at least one model")
        for m in self.fmax_models:
            if m not in KNOWN:
                raise ValueError(f"--fmax-models: {m!r} is not a model; allowed: "
                                 f"{', '.join(KNOWN)}")  # fmt: skip
        for b in self.bits:
            if not 2 <= b <= 16:
                raise ValueError(f"--bits must be integers in [2, 16], got {b}")
        if not self.bits:
            raise ValueError("--bits must name at least one width")
        for k in ("seeds", "epochs", "patience", "qat_epochs", "qat_patience"):
            if getattr(self, k) < 1:
                raise ValueError(f"--{k.replace('_', '-')} must be >= 1, got {getattr(self, k)}")
        if self.hw_budget is not None and not self.hw_budget > 0:
            raise ValueError(f"--hw-budget must be > 0 minutes, got {self.hw_budget / 60:g}")
        if not 0 <= self.hw_seeds <= self.seeds:
            raise ValueError(f"--hw-seeds must be in [0, {self.seeds}], got {self.hw_seeds}")


QUICK = dict(models=("jsc-toy",), seeds=2, bits=(8, 4), epochs=60, qat_epochs=10)
