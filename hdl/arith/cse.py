"""Common-subexpression elimination of signed-digit pairs across a constant matrix.

Every output row is a list of terms ``±node << shift``.  A *pattern* is a pair
of terms up to a common shift and sign: ``(a, b, d, sub)`` stands for
``a + (-1)**sub * (b << d)``.  The pattern occurring most often (at least
twice) becomes one shared adder, every occurrence becomes a single term of it,
and the search repeats on the rewritten rows (the two-term CSE of da4ml and of
the multiple-constant-multiplication literature).  Each extra occurrence saves
one adder.  Pair counts are updated incrementally, so a rewrite costs O(row
length), not O(row length squared).
"""

from __future__ import annotations

import heapq
from collections import Counter

from .adder_graph import Graph, Node, Term

Key = tuple[int, int, int, bool]


def _order(t1: Term, t2: Term) -> tuple[Term, Term]:
    return (t1, t2) if (t1.shift, t1.node.ident) <= (t2.shift, t2.node.ident) else (t2, t1)


def _key(t1: Term, t2: Term) -> Key | None:
    a, b = _order(t1, t2)
    d = b.shift - a.shift
    if d == 0 and a.node is b.node:
        return None  # x + x: a shift, not an adder
    return a.node.ident, b.node.ident, d, a.neg != b.neg


class _Rows:
    """The rows as ``{(node ident, shift): term}``, the total count of every pattern, and
    which rows hold each node (a pattern's rows are among those holding both its nodes).

    Within a row a (node, shift) pair occurs at most once: the digits of one
    weight have distinct shifts, and a shared node replaces one occurrence per
    base shift.
    """

    def __init__(self, rows: list[list[Term]]):
        self.rows = [{(t.node.ident, t.shift): t for t in r} for r in rows]
        self.total: Counter = Counter()
        self.holding: dict[int, set[int]] = {}
        for k, r in enumerate(rows):
            for i, t1 in enumerate(r):
                self.holding.setdefault(t1.node.ident, set()).add(k)
                for t2 in r[i + 1 :]:
                    self.total[_key(t1, t2)] += 1
        self.total.pop(None, None)
        self.heap = [(-n, key[2], key) for key, n in self.total.items() if n >= 2]
        heapq.heapify(self.heap)

    def best(self) -> Key | None:
        """The most frequent pattern occurring at least twice; ties: the smallest shift
        between its terms (a narrower shared adder), then the smallest key."""
        while self.heap:
            n, _, key = self.heap[0]
            if -n == self.total.get(key, 0) and -n >= 2:
                return key
            heapq.heappop(self.heap)  # stale entry
        return None

    def rows_with(self, key: Key) -> list[int]:
        return sorted(self.holding.get(key[0], set()) & self.holding.get(key[1], set()))

    def replace(self, k: int, a: Term, b: Term, new: Term) -> None:
        row = self.rows[k]
        del row[(a.node.ident, a.shift)], row[(b.node.ident, b.shift)]
        delta: Counter = Counter()
        delta[_key(a, b)] -= 1
        for t in row.values():
            delta[_key(a, t)] -= 1
            delta[_key(b, t)] -= 1
            delta[_key(new, t)] += 1
        delta.pop(None, None)
        total, heap = self.total, self.heap
        for key, n in delta.items():
            total[key] += n
            if n > 0 and total[key] >= 2:
                heapq.heappush(heap, (-total[key], key[2], key))
        row[(new.node.ident, new.shift)] = new
        self.holding.setdefault(new.node.ident, set()).add(k)
        for t in (a, b):  # a row may still hold the node at other shifts
            if not any(ident == t.node.ident for ident, _ in row):
                self.holding[t.node.ident].discard(k)

    def occurrences(self, k: int, key: Key) -> list[tuple[Term, Term]]:
        """Non-overlapping occurrences of ``key`` in row ``k``, lowest shift first."""
        ia, ib, d, sub = key
        row = self.rows[k]
        used: set[tuple[int, int]] = set()
        found = []
        for _, shift in sorted(p for p in row if p[0] == ia):
            b_at = (ib, shift + d)
            if (ia, shift) in used or b_at in used or b_at not in row:
                continue
            a, b = row[(ia, shift)], row[b_at]
            if (a.neg != b.neg) == sub and _key(a, b) == key:
                used |= {(ia, shift), b_at}
                found.append((a, b))
        return found


def share_pairs(g: Graph, rows: list[list[Term]]) -> list[list[Term]]:
    """``rows`` rewritten so that every pair pattern used twice or more is one shared adder."""
    state = _Rows(rows)
    while (key := state.best()) is not None:
        node: Node | None = None
        for k in state.rows_with(key):
            for a, b in state.occurrences(k, key):
                if node is None:
                    node = g.add(a.node, b.node, key[2], key[3])
                state.replace(k, a, b, Term(node, a.shift, a.neg))
        if node is None:  # counted but not realisable without overlap: never pick it again
            state.total[key] = 0
    return [list(r.values()) for r in state.rows]
