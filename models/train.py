"""Training (float and quantisation-aware), evaluation and checkpoints.

Seeded end to end (initialisation and batch order); early stopping keeps the
weights with the best validation loss.  Checkpoints are written atomically
(temporary file, then ``os.replace``): ``NAME_DATASET[_ACT].pt`` holds the
state dict and metadata, the ``.json`` next to it the metadata alone.
"""

from __future__ import annotations

import copy
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from qspec.network import QuantisedNetwork

from .data import Dataset, Split
from .fold import FoldedNet, fold_batchnorm
from .qconfig import QuantConfig
from .quant import FakeQuantNet, quantise_network
from .zoo import JSCNet, ModelSpec, build_model

CHECKPOINT_DIR = Path(__file__).parent / "checkpoints"


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 200
    batch_size: int = 128  # few steps per epoch: per-step overhead dominates these tiny models
    lr: float = 5e-3
    weight_decay: float = 1e-4
    patience: int = 20  # epochs without a better val loss before stopping
    seed: int = 0

    def __post_init__(self) -> None:
        for k in ("epochs", "batch_size", "patience"):
            v = getattr(self, k)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{k} must be an integer >= 1, got {v!r}")


@torch.no_grad()
def evaluate(model: nn.Module, split: Split) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` on ``split``."""
    model.eval()
    logits = model(torch.from_numpy(split.x)).double()
    y = torch.from_numpy(split.y)
    acc = float((logits.argmax(dim=1) == y).double().mean())
    return acc, float(F.cross_entropy(logits, y))


def _fit(
    model: nn.Module, ds: Dataset, cfg: TrainConfig, progress: bool, desc: str
) -> dict[str, Any]:
    """Adam + cross-entropy with early stopping on the val loss; restores the best weights."""
    from tqdm.auto import tqdm

    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    x, y = torch.from_numpy(ds.train.x), torch.from_numpy(ds.train.y)
    opt = torch.optim.Adam(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True
    )
    best = (float("inf"), 0, copy.deepcopy(model.state_dict()))
    bar = tqdm(range(cfg.epochs), desc=desc, disable=not progress, leave=False)
    epoch = 0
    for epoch in bar:
        model.train()
        for idx in torch.randperm(len(y), generator=gen).split(cfg.batch_size):
            opt.zero_grad()
            F.cross_entropy(model(x[idx]).float(), y[idx]).backward()
            opt.step()
        acc, loss = evaluate(model, ds.val)
        bar.set_postfix(val_loss=f"{loss:.3f}", val_acc=f"{acc:.3f}")
        if loss < best[0]:
            best = (loss, epoch, copy.deepcopy(model.state_dict()))
        elif epoch - best[1] >= cfg.patience:
            break
    bar.close()
    model.load_state_dict(best[2])
    return {"epochs_run": epoch + 1, "best_epoch": best[1] + 1}


def train_float(
    spec: ModelSpec, ds: Dataset, cfg: TrainConfig = TrainConfig(), progress: bool = True
) -> tuple[JSCNet, dict[str, Any]]:
    """Train a float model; returns it (eval mode) and metadata incl. test accuracy."""
    model = build_model(spec, cfg.seed)
    info = _fit(model, ds, cfg, progress, spec.name)
    model.eval()
    meta = _meta(spec, ds, cfg, info, model)
    return model, meta


def train_qat(
    folded: FoldedNet,
    config: QuantConfig,
    ds: Dataset,
    cfg: TrainConfig = TrainConfig(),
    progress: bool = True,
) -> tuple[FakeQuantNet, dict[str, Any]]:
    """Fine-tune ``folded`` through its fake-quantised form (straight-through estimator).

    Formats are calibrated once on the train split before training and then kept.
    """
    folded = copy.deepcopy(folded)
    fq = FakeQuantNet(folded, quantise_network(folded, config, ds.train.x))
    info = _fit(fq, ds, cfg, progress, "qat")
    fq.spec = fq.to_spec()
    info["val_acc"], info["val_loss"] = evaluate(fq, ds.val)
    info["test_acc"], info["test_loss"] = evaluate(fq, ds.test)
    return fq, info


def _meta(spec: ModelSpec, ds: Dataset, cfg: TrainConfig, info: dict, model: nn.Module) -> dict:
    val_acc, val_loss = evaluate(model, ds.val)
    test_acc, test_loss = evaluate(model, ds.test)
    return {
        "model": asdict(spec),
        "dataset": ds.name,
        "train": asdict(cfg),
        **info,
        "val_acc": val_acc,
        "val_loss": val_loss,
        "test_acc": test_acc,
        "test_loss": test_loss,
    }


def checkpoint_stem(name: str, dataset: str, activation: str, qat: bool = False) -> str:
    """``jsc-s_digits16_relu``; jsc-tiny has no activation, so no suffix."""
    act = "" if not ModelSpec(name, 1, 1, activation).has_activation else f"_{activation}"
    return f"{name}_{dataset}{act}{'_qat' if qat else ''}"


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; checkpoints are ordinary package data
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: Path, state: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write ``path`` (.pt: state + meta) and its .json (meta), each atomically."""
    _atomic_write(path, lambda f: torch.save({"state_dict": state, "meta": meta}, f))
    text = json.dumps(meta, indent=1, sort_keys=True).encode()
    _atomic_write(path.with_suffix(".json"), lambda f: f.write(text))


def save_float(model: JSCNet, meta: dict, directory: Path = CHECKPOINT_DIR) -> Path:
    s = model.spec
    path = Path(directory) / f"{checkpoint_stem(s.name, meta['dataset'], s.activation)}.pt"
    save_checkpoint(path, model.state_dict(), meta)
    return path


def save_qat(fq: FakeQuantNet, meta: dict, info: dict, directory: Path = CHECKPOINT_DIR) -> Path:
    """A QAT checkpoint: folded float weights + the integer spec they quantise to."""
    s = ModelSpec(**meta["model"])
    stem = checkpoint_stem(s.name, meta["dataset"], s.activation, qat=True)
    qmeta = {**meta, "qat": info, "spec": fq.spec.to_dict()}
    path = Path(directory) / f"{stem}.pt"
    save_checkpoint(path, fq.folded.state_dict(), qmeta)
    return path


def load_float(
    name: str,
    dataset: str = "digits16",
    activation: str = "relu",
    directory: Path | None = None,
) -> tuple[JSCNet, dict[str, Any]]:
    """A trained float model from ``directory`` (default: the shipped checkpoints)."""
    ModelSpec(name, 1, 1, activation)  # validates name/activation with a one-line error
    directory = CHECKPOINT_DIR if directory is None else Path(directory)
    path = directory / f"{checkpoint_stem(name, dataset, activation)}.pt"
    if not path.is_file():
        raise ValueError(
            f"checkpoint not found: {path} "
            f"(run: python -m models train {name} --dataset {dataset} --activation {activation})"
        )
    ck = torch.load(path, map_location="cpu", weights_only=True)
    meta = ck["meta"]
    model = JSCNet(ModelSpec(**meta["model"]))
    model.load_state_dict(ck["state_dict"])
    return model.eval(), meta


def load_qat(path: str | Path) -> tuple[FakeQuantNet, dict[str, Any]]:
    """A QAT checkpoint back as a fake-quant model (its spec is in ``.spec``)."""
    ck = torch.load(Path(path), map_location="cpu", weights_only=True)
    meta = ck["meta"]
    spec = QuantisedNetwork.from_dict(meta["spec"])
    model = JSCNet(ModelSpec(**meta["model"]))
    folded = fold_batchnorm(model)  # the right shape; weights replaced below
    folded.load_state_dict(ck["state_dict"])
    return FakeQuantNet(folded, spec), meta


def accuracy_of_spec(spec: QuantisedNetwork, split: Split) -> float:
    """Accuracy of the integer reference on ``split``."""
    from qspec.integer_forward import predict, quantise_input

    return float(np.mean(predict(spec, quantise_input(spec, split.x)) == split.y))
