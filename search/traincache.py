"""The trained-weight cache: a trial whose point was already fine-tuned trains nothing.

An entry is one JSON file, ``<cache dir>/trained/<key>.json`` (:func:`cache_dir`: beside the
synthesis cache, ``$HWFIRST_CACHE_DIR`` or the user cache dir, so every study on the machine
shares it), holding the fine-tuned :class:`~qspec.network.QuantisedNetwork`, the epoch kept
and the per-epoch validation accuracies (a pruned trial replays them to its pruner).  The
key hashes everything the result depends on: the sampled quantisation config (whatever keys
it holds), the training table (not ``from``: the weights stand for it), the checkpoint's
weights, the train/val data, the source of ``models`` and ``qspec`` (calibration,
fake-quantisation, training), torch's version and :data:`VERSION`; a hit skips calibration
too.  Entries are written atomically; one that cannot be read or does not match
its key is ignored with a warning (and rewritten), never trusted.  ``HWFIRST_TRAIN_CACHE=0``
turns the cache off.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qspec.files import WriteError, atomic_write
from qspec.network import QuantisedNetwork

if TYPE_CHECKING:
    from models.data import Dataset
    from models.fold import FoldedNet

    from .config import TrainingConfig

VERSION = 1  # bump when fine-tuning changes what a key produces
ENV = "HWFIRST_TRAIN_CACHE"  # "0": no cache
_WARNED: set[str] = set()


def cache_dir() -> Path:
    from hdl.synth.cache import default_cache_dir

    return default_cache_dir() / "trained"


def enabled() -> bool:
    return os.environ.get(ENV, "1") not in ("0", "off", "false", "no")


def _warn(path: Path, why: str) -> None:
    if str(path) not in _WARNED:  # once per entry and process: the run goes on without it
        _WARNED.add(str(path))
        print(f"warning: trained-weight cache {path}: {why}", file=sys.stderr)


def digest(*arrays: Any) -> str:
    """The SHA-256 of numpy arrays / tensors (dtype, shape and bytes)."""
    import numpy as np

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a.detach().cpu().numpy() if hasattr(a, "detach") else a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def source_identity(folded: FoldedNet, ds: Dataset) -> str:
    """What a context trains from: the checkpoint's weights and the train/val data."""
    state = folded.state_dict()
    weights = digest(*(state[k] for k in sorted(state)))
    data = digest(ds.train.x, ds.train.y, ds.val.x, ds.val.y)
    return f"{weights}:{data}"


def cache_key(qc: Any, training: TrainingConfig, source: str) -> str:
    """Calibration and training are deterministic functions of these, so a hit needs
    neither (not even the PTQ spec: the code that computes it is in the key)."""
    import torch

    from hdl.synth.cache import source_fingerprint

    t = {k: v for k, v in training.to_dict().items() if k != "from"}
    parts = {
        "version": VERSION,
        "torch": torch.__version__,
        "code": source_fingerprint("models", "qspec"),  # calibration, fake-quant, training
        "design": repr(qc),  # a frozen dataclass: every key it holds, in a fixed order
        "training": t,
        "source": source,
    }
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Trained:
    """A fine-tuning result: the kept spec and ``finetune_spec``'s info."""

    net: QuantisedNetwork
    epochs_run: int
    best_epoch: int
    best_val_acc: float
    val_accuracies: tuple[float, ...]  # index 0: the starting weights

    def info(self) -> dict[str, Any]:
        return {
            "epochs_run": self.epochs_run,
            "best_epoch": self.best_epoch,
            "best_val_acc": self.best_val_acc,
            "val_accuracies": list(self.val_accuracies),
        }


def get(key: str, directory: Path | None = None) -> Trained | None:
    """The entry of ``key``, or ``None`` (absent, off, or unreadable: warned)."""
    if not enabled():
        return None
    path = (directory or cache_dir()) / f"{key}.json"
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    except OSError as e:
        _warn(path, f"cannot be read ({e.strerror}); training again")
        return None
    try:
        d = json.loads(text)
        if d.get("key") != key:
            raise ValueError("holds another key")
        accs = tuple(float(a) for a in d["val_accuracies"])
        t = Trained(
            QuantisedNetwork.from_dict(d["spec"]),
            int(d["epochs_run"]),
            int(d["best_epoch"]),
            float(d["best_val_acc"]),
            accs,
        )
        if not 0 <= t.best_epoch < len(accs) or accs[t.best_epoch] != t.best_val_acc:
            raise ValueError("its kept epoch does not match its accuracies")
        return t
    except Exception as e:  # any damage: a miss, never a crash nor a wrong network
        _warn(path, f"is corrupt ({type(e).__name__}: {str(e)[:80]}); training again")
        return None


def put(key: str, t: Trained, directory: Path | None = None) -> None:
    """Store ``t`` (atomically); a cache that cannot be written is warned about, not fatal."""
    if not enabled():
        return
    path = (directory or cache_dir()) / f"{key}.json"
    doc = {"key": key, "spec": t.net.to_dict(), **t.info()}
    try:
        atomic_write(path, json.dumps(doc, sort_keys=True))
    except (WriteError, OSError) as e:
        _warn(path, f"cannot be written ({e})")
