"""Training (float and quantisation-aware), evaluation and checkpoints.

Seeded end to end (initialisation and batch order); early stopping keeps the
weights with the best validation loss.  Checkpoints are written atomically
(:func:`qspec.files.atomic_write`): ``STEM.pt`` holds the state dict and
metadata, the ``.json`` next to it the metadata alone; the stem names
everything that tells two trained models apart (see :func:`checkpoint_stem`).

``train`` writes to the user's checkpoint directory (``$HWFIRST_CHECKPOINTS``,
else ``platformdirs.user_data_dir("hwfirst")/checkpoints``), never into the
package; loading looks there first, then in the shipped ``models/checkpoints``.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from qspec.files import atomic_write_many
from qspec.network import QuantisedNetwork

from .data import Dataset, Split
from .fold import FoldedNet, fold_batchnorm
from .qconfig import QuantConfig
from .quant import FakeQuantNet, WeightRule, quantise_network, weight_rules
from .store import checkpoint_dirs, checkpoint_stem, find_checkpoint, user_checkpoint_dir
from .zoo import DEFAULT_SLOPE, JSCNet, ModelSpec, build_model


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


def score_logits(logits: torch.Tensor | np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``logits`` (N, C) for labels ``y``, in float64.

    The predicted class is the first maximum (``torch.argmax``).
    """
    logits = torch.as_tensor(logits).double()
    y = torch.as_tensor(y)
    acc = float((logits.argmax(dim=1) == y).double().mean())
    return acc, float(F.cross_entropy(logits, y))


@torch.no_grad()
def evaluate(model: nn.Module, split: Split) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` on ``split``."""
    model.eval()
    return score_logits(model(torch.from_numpy(split.x)), split.y)


SELECTIONS = ("loss", "accuracy")  # what picks the kept epoch: val loss | val accuracy


def _fit(
    model: nn.Module,
    ds: Dataset,
    cfg: TrainConfig,
    progress: bool,
    desc: str,
    *,
    select: str = "loss",
    after_step: Callable[[nn.Module], None] | None = None,
    on_epoch: Callable[[int, float, float], None] | None = None,
    penalty: Callable[[], torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Adam + cross-entropy (+ ``penalty()``, when given) with early stopping on the
    validation split; restores the best weights.

    ``select="loss"``: the epoch with the least val loss.  ``select="accuracy"``: the
    highest val accuracy (ties: the lower val loss, then the earlier epoch), where the
    starting weights are epoch 0 -- fine-tuning never keeps worse weights than it
    started from.  ``patience`` epochs without a better one stop the run.
    ``after_step(model)`` runs after every optimiser step (e.g. to re-apply a pruning
    mask).  ``on_epoch(epoch, val_acc, val_loss)`` runs after every epoch's evaluation
    (1-based; it may raise to stop the run, e.g. ``optuna.TrialPruned``).  Returns
    ``epochs_run``, ``best_epoch`` and ``val_accuracies`` (per epoch; by accuracy index 0 is
    the start) and, by accuracy, the kept epoch's val figures.
    """
    from tqdm.auto import tqdm

    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {'|'.join(SELECTIONS)}, got {select!r}")
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    x, y = torch.from_numpy(ds.train.x), torch.from_numpy(ds.train.y)
    opt = torch.optim.Adam(
        model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, foreach=True
    )

    def key(acc: float, loss: float) -> tuple[float, ...]:  # larger is better
        return (-loss,) if select == "loss" else (acc, -loss)

    # (key, epochs trained, weights, val acc, val loss); by loss the start is no candidate
    best = ((-math.inf,), 1, copy.deepcopy(model.state_dict()), math.nan, math.nan)
    accs: list[float] = []
    if select == "accuracy":
        acc, loss = evaluate(model, ds.val)
        best = (key(acc, loss), 0, best[2], acc, loss)
        accs.append(acc)
    bar = tqdm(range(cfg.epochs), desc=desc, disable=not progress, leave=False)
    epoch = 0
    for epoch in bar:
        model.train()
        for idx in torch.randperm(len(y), generator=gen).split(cfg.batch_size):
            opt.zero_grad()
            objective = F.cross_entropy(model(x[idx]).float(), y[idx])
            if penalty is not None:  # None: not even a zero added, so the weights stay today's
                objective = objective + penalty()
            objective.backward()
            opt.step()
            if after_step is not None:
                after_step(model)
        acc, loss = evaluate(model, ds.val)
        bar.set_postfix(val_loss=f"{loss:.3f}", val_acc=f"{acc:.3f}")
        accs.append(acc)
        if on_epoch is not None:
            on_epoch(epoch + 1, acc, loss)
        if key(acc, loss) > best[0]:
            best = (key(acc, loss), epoch + 1, copy.deepcopy(model.state_dict()), acc, loss)
        elif epoch + 1 - best[1] >= cfg.patience:
            break
    bar.close()
    model.load_state_dict(best[2])
    info: dict[str, Any] = {"epochs_run": epoch + 1, "best_epoch": best[1], "val_accuracies": accs}
    if select == "accuracy":
        info |= {"best_val_acc": best[3], "best_val_loss": best[4]}
    return info


def train_float(
    spec: ModelSpec, ds: Dataset, cfg: TrainConfig = TrainConfig(), progress: bool = True
) -> tuple[JSCNet, dict[str, Any]]:
    """Train a float model; returns it (eval mode) and metadata incl. test accuracy."""
    model = build_model(spec, cfg.seed)
    info = _fit(model, ds, cfg, progress, spec.name)
    model.eval()
    meta = _meta(spec, ds, cfg, info, model)
    return model, meta


def finetune_spec(
    folded: FoldedNet,
    spec: QuantisedNetwork,
    ds: Dataset,
    cfg: TrainConfig,
    progress: bool = False,
    *,
    after_step: Callable[[nn.Module], None] | None = None,
    rules: dict[str, WeightRule] | None = None,
    on_epoch: Callable[[int, float, float], None] | None = None,
    l1: float = 0.0,
) -> tuple[QuantisedNetwork, FoldedNet, dict[str, Any]]:
    """Quantisation-aware fine-tuning in ``spec``'s formats (calibrated before, then kept).

    A copy of ``folded`` is trained through :class:`FakeQuantNet` (``weights="float"``:
    qspec's integer semantics forward, straight-through gradients); the epoch with the
    best *validation* accuracy is kept (epoch 0: the starting weights, so ``spec``
    itself when their codes are ``spec``'s); ``on_epoch`` as for ``_fit``.  Returns the
    kept weights' integer spec, the fine-tuned float model and ``_fit``'s info.
    Deterministic for ``cfg.seed``.

    ``rules`` (:func:`models.quant.weight_rules` of the config that built ``spec``) keep
    its pruning masks and digit budgets: masked float weights are zeroed before training
    and after every step (then ``after_step`` runs), so they stay exactly zero.

    ``l1 > 0`` adds :func:`weight_l1` times ``l1`` to the training loss (only the loss: the
    kept weights are quantised exactly as without it); ``0`` trains exactly as before.
    """
    folded = copy.deepcopy(folded)
    masks = {n: r.mask for n, r in (rules or {}).items() if r.mask is not None}
    lins = {ly.name: ly.linear for ly in folded.layers}

    def zero_masked() -> None:
        with torch.no_grad():
            for name, mask in masks.items():
                lins[name].weight.mul_(mask)

    def step(model: nn.Module) -> None:
        zero_masked()
        if after_step is not None:
            after_step(model)

    zero_masked()
    qat = FakeQuantNet(folded, spec, weights="float", rules=rules)
    if not (math.isfinite(l1) and l1 >= 0):
        raise ValueError(f"l1 must be a finite number >= 0, got {l1!r}")
    penalty = (lambda: l1 * weight_l1(folded, spec)) if l1 else None
    with torch_threads(FINETUNE_THREADS):
        info = _fit(
            qat, ds, cfg, progress, "qat", select="accuracy", after_step=step,
            on_epoch=on_epoch, penalty=penalty,
        )  # fmt: skip
    return qat.to_spec(), folded, info


def weight_l1(folded: FoldedNet, spec: QuantisedNetwork) -> torch.Tensor:
    """Mean over every weight of ``|w| / step``: the float weights in units of their layer's
    quantisation step (``2**-weight_frac_width`` in ``spec``), differentiable.

    The adder-aware regulariser of QAT.  In the generator a zero code costs no adder and a
    nonzero one at least one, so what pays is moving weights into the zero bin; measuring
    them in steps makes that push the same per weight whatever the layer's scale (a raw
    ``|w|`` would favour layers with coarse steps).  ``max_digits`` already bounds the digits
    of the weights that stay nonzero.
    """
    lins = {ly.name: ly.linear for ly in folded.layers}
    total = torch.zeros((), dtype=torch.float64)
    n = 0
    for ly in spec.linear_layers:
        w = lins[ly.name].weight
        total = total + w.double().abs().sum() * 2.0**ly.weight_fmt.frac_width
        n += w.numel()
    return total / n


# These models are tiny: intra-op threads only add synchronisation (on two busy cores an
# epoch took 0.2-1.5 s with 2 threads, 15-50 ms with 1), and one thread also makes the
# float64 gradients -- and so the weights -- independent of the machine's core count.
FINETUNE_THREADS = 1


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_qat(
    folded: FoldedNet,
    config: QuantConfig,
    ds: Dataset,
    cfg: TrainConfig = TrainConfig(),
    progress: bool = True,
) -> tuple[FakeQuantNet, dict[str, Any]]:
    """Fine-tune ``folded`` through its fake-quantised form (straight-through estimator).

    Formats are calibrated once on the train split before training and then kept.
    Returns the fine-tuned model frozen to its integer spec (``weights="spec"``).
    """
    folded = copy.deepcopy(folded)
    rules = weight_rules(folded, config)
    spec = quantise_network(folded, config, ds.train.x)
    qat = FakeQuantNet(folded, spec, weights="float", rules=rules)
    info = _fit(qat, ds, cfg, progress, "qat")
    fq = FakeQuantNet(folded, qat.to_spec())
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


def _meta_stem(meta: dict[str, Any], qat: bool = False) -> str:
    m = meta["model"]
    return checkpoint_stem(
        m["name"], meta["dataset"], m["activation"], qat,
        slope=m["slope"], seed=meta["train"]["seed"],
    )  # fmt: skip


def save_checkpoint(path: Path, state: dict[str, Any], meta: dict[str, Any]) -> None:
    """Write ``path`` (.pt: state + meta) and its .json (meta): both or neither."""
    atomic_write_many(
        {  # the pair or nothing
            path: lambda f: torch.save({"state_dict": state, "meta": meta}, f),
            path.with_suffix(".json"): json.dumps(meta, indent=1, sort_keys=True),
        }
    )


def save_float(model: JSCNet, meta: dict, directory: str | Path | None = None) -> Path:
    """Save to ``directory`` (default: :func:`user_checkpoint_dir`) under its stem."""
    directory = user_checkpoint_dir() if directory is None else Path(directory)
    path = directory / f"{_meta_stem(meta)}.pt"
    save_checkpoint(path, model.state_dict(), meta)
    return path


def save_qat(fq: FakeQuantNet, meta: dict, info: dict, directory: str | Path | None = None) -> Path:
    """A QAT checkpoint: folded float weights + the integer spec they quantise to."""
    directory = user_checkpoint_dir() if directory is None else Path(directory)
    qmeta = {**meta, "qat": info, "spec": fq.spec.to_dict()}
    path = directory / f"{_meta_stem(meta, qat=True)}.pt"
    save_checkpoint(path, fq.folded.state_dict(), qmeta)
    return path


def load_float(
    name: str,
    dataset: str = "digits16",
    activation: str = "relu",
    directory: str | Path | None = None,
    *,
    slope: float = DEFAULT_SLOPE,
    seed: int = 0,
) -> tuple[JSCNet, dict[str, Any]]:
    """The float model trained with these settings (see :func:`checkpoint_dirs`)."""
    ModelSpec(name, 1, 1, activation, slope)  # validates with a one-line error
    stem = checkpoint_stem(name, dataset, activation, slope=slope, seed=seed)
    path = find_checkpoint(stem, directory)
    if path is None:
        leaky = activation == "leaky_relu" and ModelSpec(name, 1, 1).has_activation
        how = f"--dataset {dataset} --activation {activation}"
        how += f" --slope {float(slope)!r}" if leaky else ""
        how += f" --seed {seed}" if seed != 0 else ""
        where = " or ".join(str(d) for d in checkpoint_dirs(directory))
        raise ValueError(
            f"no checkpoint {stem}.pt in {where} (train it: python -m models train {name} {how})"
        )
    ck = torch.load(path, map_location="cpu", weights_only=True)
    meta = ck["meta"]
    if _meta_stem(meta) != stem:  # a renamed or hand-copied file
        raise ValueError(f"checkpoint {path} holds {_meta_stem(meta)}, not {stem}")
    model = JSCNet(ModelSpec(**meta["model"]))
    model.load_state_dict(ck["state_dict"])
    return model.eval(), meta


def load_float_file(
    path: str | Path,
    name: str,
    dataset: str = "digits16",
    activation: str = "relu",
    *,
    slope: float = DEFAULT_SLOPE,
) -> tuple[JSCNet, dict[str, Any]]:
    """A float checkpoint file (``models train`` writes them) that must hold ``name``
    trained on ``dataset`` with ``activation``/``slope``; else a one-line ``ValueError``."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"checkpoint file not found: {path}")
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        meta, state = ck["meta"], ck["state_dict"]
        spec = ModelSpec(**meta["model"])
        got = _meta_stem(meta)
    except Exception as e:  # not a checkpoint of ours: say so in one line
        raise ValueError(f"{path} is not a float checkpoint ({type(e).__name__})") from None
    if "spec" in meta:
        raise ValueError(f"{path} is a QAT checkpoint; give the float checkpoint it came from")
    want = checkpoint_stem(name, dataset, activation, slope=slope, seed=meta["train"]["seed"])
    if got != want:
        raise ValueError(f"checkpoint {path} holds {got}, the model section asks for {want}")
    model = JSCNet(spec)
    model.load_state_dict(state)
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
