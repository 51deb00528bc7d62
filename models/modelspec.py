"""Model, activation, dataset and split names and :class:`ModelSpec` (torch-free, checked fast)."""

from __future__ import annotations

from dataclasses import dataclass

from qspec.errors import ParamError

MODELS = {"jsc-tiny": (), "jsc-toy": (8, 8), "jsc-s": (64, 32, 32)}
ACTIVATIONS = ("relu", "leaky_relu")
DATASETS = ("digits16", "jsc")  # models.data loads them
SPLITS = ("val", "test")  # the held-out splits metrics are measured on
DEFAULT_SLOPE = 0.125  # a power of two, so the shift-only LeakyReLU is exact


@dataclass(frozen=True)
class ModelSpec:
    """What to build: a model name, its activation and the dataset's shape."""

    name: str
    in_features: int
    num_classes: int
    activation: str = "relu"
    slope: float = DEFAULT_SLOPE

    def __post_init__(self) -> None:
        if self.name not in MODELS:
            raise ValueError(f"model must be one of {'|'.join(MODELS)}, got {self.name!r}")
        if self.activation not in ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {'|'.join(ACTIVATIONS)}, got {self.activation!r}"
            )
        if not 0 < self.slope < 1:  # also refuses nan
            raise ParamError("slope", f"slope must be in (0, 1), got {self.slope}")
        for k in ("in_features", "num_classes"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{k} must be an integer >= 1, got {v!r}")

    @property
    def hidden(self) -> tuple[int, ...]:
        return MODELS[self.name]

    @property
    def has_activation(self) -> bool:
        return bool(self.hidden)
