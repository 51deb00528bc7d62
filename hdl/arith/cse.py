"""Common-subexpression elimination of signed-digit pairs across a constant matrix.

Every output row is a list of terms ``±node << shift``.  A *pattern* is a pair
of terms up to a common shift and sign: ``(a, b, d, sub)`` stands for
``a + (-1)**sub * (b << d)``.  The pattern occurring in the most rows (at least
twice) becomes one shared adder, every occurrence becomes a single term of it,
and the search repeats on the rewritten rows (the two-term CSE of da4ml and
of the multiple-constant-multiplication literature).  Each extra occurrence
saves one adder.
"""

from __future__ import annotations

import heapq
from collections import Counter

from .adder_tree import Graph, Term

Key = tuple[int, int, int, bool]


def _order(t1: Term, t2: Term) -> tuple[Term, Term]:
    return (t1, t2) if (t1.shift, t1.node.ident) <= (t2.shift, t2.node.ident) else (t2, t1)


def _key(t1: Term, t2: Term) -> Key | None:
    a, b = _order(t1, t2)
    d = b.shift - a.shift
    if d == 0 and a.node is b.node:
        return None  # x + x: a shift, not an adder
    return a.node.ident, b.node.ident, d, a.neg != b.neg


def _row_counts(row: list[Term]) -> Counter:
    counts: Counter = Counter()
    for i, t1 in enumerate(row):
        for t2 in row[i + 1 :]:
            k = _key(t1, t2)
            if k is not None:
                counts[k] += 1
    return counts


def _rewrite(g: Graph, row: list[Term], key: Key, cache: dict) -> list[Term]:
    """Replace non-overlapping occurrences of ``key`` in ``row`` by terms of the shared node."""
    used = [False] * len(row)
    out: list[Term] = []
    for i, t1 in enumerate(row):
        if used[i]:
            continue
        for j in range(i + 1, len(row)):
            if not used[j] and _key(t1, row[j]) == key:
                a, b = _order(t1, row[j])
                if key not in cache:
                    cache[key] = g.add(a.node, b.node, key[2], key[3])
                out.append(Term(cache[key], a.shift, a.neg))
                used[i] = used[j] = True
                break
    return out + [t for i, t in enumerate(row) if not used[i]]


def share_pairs(g: Graph, rows: list[list[Term]], max_rounds: int = 10_000) -> list[list[Term]]:
    """``rows`` rewritten so that every pair pattern used in two or more rows is one adder."""
    rows = [list(r) for r in rows]
    per_row = [_row_counts(r) for r in rows]
    total: Counter = Counter()
    where: dict[Key, set[int]] = {}
    for k, counts in enumerate(per_row):
        total.update(counts)
        for key in counts:
            where.setdefault(key, set()).add(k)
    heap = [(-n, key) for key, n in total.items() if n >= 2]
    heapq.heapify(heap)
    cache: dict = {}
    for _ in range(max_rounds):
        while heap and -heap[0][0] != total.get(heap[0][1], 0):
            heapq.heappop(heap)  # stale entry
        if not heap or -heap[0][0] < 2:
            break
        key = heap[0][1]
        for k in sorted(where.get(key, ())):
            rows[k] = _rewrite(g, rows[k], key, cache)
            new = _row_counts(rows[k])
            changed = set(per_row[k]) | set(new)
            total.subtract(per_row[k])
            total.update(new)
            for c in changed:
                if c in new:
                    where.setdefault(c, set()).add(k)
                else:
                    where.get(c, set()).discard(k)
                if total[c] >= 2:
                    heapq.heappush(heap, (-total[c], c))
            per_row[k] = new
        total.pop(key, None)  # all of its occurrences are gone
    return rows
