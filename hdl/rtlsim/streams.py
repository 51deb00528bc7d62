"""One cocotb stream source, sink and monitor for exported ``i``/``o`` stream ports.

:func:`run_stream` drives ``i__valid``/``i__payload`` (random stalls; random junk on the
payload while valid is low; valid and payload held until ``i__ready``), accepts on
``o`` with a random ``o__ready``, and checks the stream rules on ``o``:

* ``o.valid``/``o.payload`` do not change when ``o.ready`` flips within a cycle
  (valid never depends on ready);
* while ``o.valid and not o.ready`` the next cycle still has ``o.valid`` with the
  same payload;
* nothing comes out after every beat has.

One coroutine does everything cycle by cycle (``tick`` is the clock edge, or nothing
for a combinational design), so each check sees exactly what the rules talk about.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable, Sequence

from cocotb.triggers import Timer

from .tb_common import Trace

STUCK_CYCLES = 300  # no handshake on either side for this long: give up


async def settle() -> None:
    await Timer(1, "ns")


async def run_stream(
    dut,
    words: Sequence[int],
    rng: random.Random,
    p_valid: Callable[[int], float],
    p_ready: Callable[[int], float],
    *,
    read_output: Callable[[], tuple[int, int]],
    accept: Callable[[Trace, int], None],
    tick: Callable[[], Awaitable[None]] | None,
    drain: int,
    present: Callable[[int | None, random.Random], None] | None = None,
    what: str = "",
) -> Trace:
    """Push the packed payloads ``words`` through ``dut``; ``p_valid``/``p_ready``: cycle ->
    probability.  ``read_output()``: ``(o.valid, o.payload word)``.  ``accept(trace, word)``
    records an accepted beat in the trace's ``outputs`` (and ``classes``).  ``present(k,
    rng)`` sets side inputs for beat ``k`` (``None``: no beat, so junk from ``rng``).
    ``drain``: cycles to keep going once every beat is out (nothing more may come).
    ``what``: the beats' name in messages."""
    tr, n = Trace(), len(words)
    in_bits = len(dut.i__payload)
    beats = f"{what} " if what else ""
    k_in, presenting = 0, False
    prev_stall: int | None = None  # o.payload held back last cycle
    limit = 200 + 50 * n
    cycle = idle_after = last_progress = 0
    while cycle < limit:
        if cycle - last_progress > STUCK_CYCLES:
            tr.error(f"no transfer for {STUCK_CYCLES} cycles at cycle {cycle}: "
                     f"{k_in}/{n} {beats}in, {len(tr.outputs)} out")  # fmt: skip
            break
        if not presenting and k_in < n and rng.random() < p_valid(cycle):
            presenting = True
        if presenting:
            dut.i__valid.value = 1
            dut.i__payload.value = words[k_in]
        else:
            dut.i__valid.value = 0
            dut.i__payload.value = rng.getrandbits(in_bits)
        if present is not None:
            present(k_in if presenting else None, rng)
        # valid (and the payload it qualifies) must not depend on ready
        dut.o__ready.value = 0
        await settle()
        v0, p0 = read_output()
        dut.o__ready.value = 1
        await settle()
        v1, p1 = read_output()
        if v0 != v1 or (v0 and p0 != p1):
            tr.error(f"cycle {cycle}: o.valid/o.payload changed with o.ready "
                     f"({v0},{p0:#x}) -> ({v1},{p1:#x})")  # fmt: skip
        ready = int(rng.random() < p_ready(cycle))
        dut.o__ready.value = ready
        await settle()
        o_valid, o_payload = read_output()
        i_ready = int(dut.i__ready.value)
        if prev_stall is not None:
            if not o_valid:
                tr.error(f"cycle {cycle}: o.valid dropped before the beat was accepted")
            elif o_payload != prev_stall:
                tr.error(f"cycle {cycle}: o.payload changed while stalled "
                         f"({prev_stall:#x} -> {o_payload:#x})")  # fmt: skip
        prev_stall = o_payload if o_valid and not ready else None
        if o_valid and len(tr.outputs) >= n:
            tr.error(f"cycle {cycle}: o.valid with all {n} beats already delivered")
        if o_valid and ready:
            accept(tr, o_payload)
            tr.out_cycles.append(cycle)
            last_progress = cycle
        if presenting and i_ready:
            last_progress = cycle
            tr.in_cycles.append(cycle)
            presenting, k_in = False, k_in + 1
        if tick is not None:
            await tick()
        cycle += 1
        if k_in == n and len(tr.outputs) >= n:
            idle_after += 1  # keep going a little: nothing more may come out
            if idle_after > drain:
                break
    if cycle >= limit:
        tr.error(f"gave up after {cycle} cycles: {k_in}/{n} {beats}in, {len(tr.outputs)} out")
    return tr
