"""Minimum spanning arborescence: Chu-Liu/Edmonds on a dense cost matrix, Tarjan on sparse edges.

``networkx.minimum_spanning_arborescence`` works on graph objects and takes seconds
for a complete digraph of 100 models; genealogy trees are rebuilt whenever a model
joins a family, so this module does the same optimisation with NumPy on the matrix.

The root is not given: a virtual root is added with an edge of prohibitive cost to
every model, so the optimum uses exactly one of them and its target is the root.
All cycles of a level are contracted at once, iteratively (no recursion), each level
O(n^2) in vectorised NumPy and O(n) kept for the expansion; O(n^3) time when, as with
the virtual root, one cycle forms per level.

A family of thousands of models has its tree built on candidate edges only
(:func:`sparse_minimum_arborescence`: Tarjan's O(E log V) formulation, mergeable heaps
and a union-find), with the same virtual root.
"""

from __future__ import annotations

import numpy as np


def _find_cycles(parent: np.ndarray, root: int) -> list[np.ndarray]:
    """Every cycle of the parent graph (each node has one parent, so cycles are disjoint)."""
    n = parent.size
    state = np.zeros(n, dtype=np.int8)  # 0 unseen, 1 on the current walk, 2 done
    cycles = []
    for start in range(n):
        if state[start]:
            continue
        walk = []
        v = start
        while v != -1 and state[v] == 0:
            state[v] = 1
            walk.append(v)
            v = int(parent[v]) if v != root else -1
        if v != -1 and state[v] == 1:
            cycles.append(np.array(walk[walk.index(v):]))
        for w in walk:
            state[w] = 2
    return cycles


def _edmonds(costs: np.ndarray, root: int) -> np.ndarray:
    """Chu-Liu/Edmonds: cheapest parent per node; contract every cycle of that choice into
    one node (entering a cycle costs the edge minus the cycle edge it replaces); repeat on
    the contracted matrix until no cycle is left; then expand level by level.

    Iterative, and each level keeps only O(n) for its expansion (its cycles' rows and
    columns of the adjusted costs, the grouping): with the virtual root of
    :func:`minimum_arborescence` a family typically contracts one cycle per level, so a
    matrix per level (what a recursive formulation holds) would be O(n^3) memory.
    """
    levels = []
    c = costs.copy()
    while True:
        n = c.shape[0]
        np.fill_diagonal(c, np.inf)
        c[:, root] = np.inf
        parent = np.argmin(c, axis=0)
        parent[root] = -1
        cycles = _find_cycles(parent, root)
        if not cycles:
            break
        in_cycle = np.zeros(n, dtype=bool)
        for cyc in cycles:
            in_cycle[cyc] = True
        others = np.flatnonzero(~in_cycle)
        group = np.empty(n, dtype=np.int64)
        group[others] = np.arange(others.size)
        for k, cyc in enumerate(cycles):
            group[cyc] = others.size + k
        cycle_nodes = np.flatnonzero(in_cycle)
        c[:, cycle_nodes] -= c[parent[cycle_nodes], cycle_nodes][None, :]  # c is now the adjusted cost
        for cyc in cycles:
            c[cyc[:, None], cyc[None, :]] = np.inf
        # Contract with one copy of the block between nodes outside cycles, and reductions
        # over the cycles' rows and columns only.
        k0 = others.size
        cycle_order = np.concatenate(cycles)
        cycle_starts = np.r_[0, np.cumsum([cyc.size for cyc in cycles])[:-1]]
        order = np.concatenate([others, cycle_order])
        starts = np.concatenate([np.arange(k0), k0 + cycle_starts])
        contracted = np.empty((k0 + len(cycles), k0 + len(cycles)))
        contracted[:k0, :k0] = c[np.ix_(others, others)]
        cycle_rows = np.minimum.reduceat(c[cycle_order, :], cycle_starts, axis=0)
        contracted[k0:, :k0] = cycle_rows[:, others]
        contracted[:k0, k0:] = np.minimum.reduceat(c[np.ix_(others, cycle_order)], cycle_starts, axis=1)
        contracted[k0:, k0:] = np.minimum.reduceat(cycle_rows[:, cycle_order], cycle_starts, axis=1)
        levels.append((parent, order, starts, cycle_nodes, c[cycle_nodes, :].copy(), c[:, cycle_nodes].copy()))
        c, root = contracted, int(group[root])
    solution = parent
    for parent, order, starts, cycle_nodes, cycle_rows, cycle_cols in reversed(levels):
        n = parent.size
        sizes = np.diff(np.r_[starts, n])
        first = order[starts]
        position = np.full(n, -1)
        position[cycle_nodes] = np.arange(cycle_nodes.size)
        result = parent.copy()  # members of a cycle keep their cycle parent...
        has = solution >= 0
        plain = has & (sizes == 1) & (sizes[np.where(has, solution, 0)] == 1)
        result[first[plain]] = first[solution[plain]]
        result[first[solution == -1]] = -1
        for v_group in np.flatnonzero(has & ~plain):  # ...except the one the cheapest entering edge reaches
            u_group = solution[v_group]
            us = order[starts[u_group] : starts[u_group] + sizes[u_group]]
            vs = order[starts[v_group] : starts[v_group] + sizes[v_group]]
            if vs.size > 1:  # entering a cycle: its columns were kept
                block = cycle_cols[us[:, None], position[vs][None, :]]
            else:  # leaving a cycle for a single node: its rows were kept
                block = cycle_rows[position[us][:, None], vs[None, :]]
            u, v = np.unravel_index(int(np.argmin(block)), block.shape)
            result[vs[v]] = us[u]
        solution = result
    return solution


def _virtual_root_cost(finite: np.ndarray, n: int) -> float:
    """Cost of an edge from the virtual root: dearer than any tree of real edges."""
    return (float(np.abs(finite).max()) + 1.0) * (n + 1) if finite.size else 1.0


def minimum_arborescence(costs: np.ndarray, not_root: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Return the minimum spanning arborescence of a dense cost matrix.

    An arborescence is a directed spanning tree: one root, and every other node with
    exactly one parent.  The root is chosen by the optimisation (a virtual root with a
    prohibitive edge to every node), so the result is the cheapest tree over all roots.

    Parameters
    ----------
    costs : ndarray of shape (n, n)
        ``costs[i, j]`` is the cost of the edge ``i -> j`` (parent ``i``, child ``j``);
        ``inf`` where there is no such edge.  The diagonal is ignored.  Every node must
        be reachable from some node.
    not_root : ndarray of bool, shape (n,), optional
        Nodes that must have a parent (e.g. a merge, whose parents are in the family);
        at least one node must be left free.

    Returns
    -------
    list of (int, int)
        The ``n - 1`` edges ``(parent, child)``, sorted; empty for fewer than two nodes.

    See Also
    --------
    networkx.algorithms.tree.branchings.minimum_spanning_arborescence : the same
        optimum on a graph object (and the reference the tests compare with).
    heritage.lineage.trees.build_tree : genealogy trees built on this.

    Notes
    -----
    Chu-Liu/Edmonds [1]_ [2]_: every node takes its cheapest incoming edge; a cycle among
    those is contracted into one node (incoming costs reduced by the cycle edge they
    would replace) and the smaller problem is solved recursively.  Each step is O(n^2)
    NumPy work on the matrix, O(n^3) in the worst case; about 10 ms for 100 models,
    where networkx takes seconds for the complete digraph.

    References
    ----------
    .. [1] Y. J. Chu and T. H. Liu, "On the shortest arborescence of a directed graph",
       Science Sinica, 14, 1965.
    .. [2] J. Edmonds, "Optimum branchings", J. Res. Nat. Bur. Standards, 71B, 1967.

    Examples
    --------
    Going 0 -> 1 -> 2 costs 1 + 2; any other tree costs more:

    >>> import numpy as np
    >>> inf = np.inf
    >>> costs = np.array([[inf, 1.0, 5.0],
    ...                   [9.0, inf, 2.0],
    ...                   [9.0, 9.0, inf]])
    >>> minimum_arborescence(costs)
    [(0, 1), (1, 2)]
    """
    n = costs.shape[0]
    if n < 2:
        return []
    big = _virtual_root_cost(costs[np.isfinite(costs)], n)
    full = np.full((n + 1, n + 1), np.inf)
    full[:n, :n] = costs
    full[n, :n] = big
    if not_root is not None:
        if np.all(not_root):
            raise ValueError("every node is ruled out as the root")
        full[n, :n][np.asarray(not_root, dtype=bool)] = np.inf
    parent = _edmonds(full, n)
    return sorted((int(parent[j]), j) for j in range(n) if parent[j] != n)


class _LeftistHeaps:
    """Mergeable min-heaps of edges (leftist trees with a lazy additive offset per subtree),
    stored in flat lists indexed by edge: a heap is its root edge, -1 when empty."""

    def __init__(self, keys: list[float]) -> None:
        m = len(keys)
        self.key = keys
        self.left = [-1] * m
        self.right = [-1] * m
        self.rank = [1] * m
        self.offset = [0.0] * m

    def _push(self, a: int) -> None:
        delta = self.offset[a]
        if delta:
            self.key[a] += delta
            if self.left[a] >= 0:
                self.offset[self.left[a]] += delta
            if self.right[a] >= 0:
                self.offset[self.right[a]] += delta
            self.offset[a] = 0.0

    def merge(self, a: int, b: int) -> int:
        if a < 0:
            return b
        if b < 0:
            return a
        self._push(a)
        self._push(b)
        if (self.key[b], b) < (self.key[a], a):
            a, b = b, a
        merged = self.merge(self.right[a], b)
        left = self.left[a]
        if left < 0 or self.rank[left] < self.rank[merged]:
            self.left[a], merged = merged, left
        self.right[a] = merged
        self.rank[a] = (self.rank[merged] if merged >= 0 else 0) + 1
        return a

    def top(self, a: int) -> float:
        self._push(a)
        return self.key[a]

    def pop(self, a: int) -> int:
        self._push(a)
        return self.merge(self.left[a], self.right[a])

    def add(self, a: int, delta: float) -> None:
        self.offset[a] += delta


class _RollbackUnionFind:
    """Union by size without path compression, so that unions can be undone in reverse."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n
        self.history: list[int] = []

    def find(self, v: int) -> int:
        parent = self.parent
        while parent[v] != v:
            v = parent[v]
        return v

    def join(self, a: int, b: int) -> bool:
        a, b = self.find(a), self.find(b)
        if a == b:
            return False
        if self.size[a] < self.size[b]:
            a, b = b, a
        self.parent[b] = a
        self.size[a] += self.size[b]
        self.history.append(b)
        return True

    def rollback(self, time: int) -> None:
        while len(self.history) > time:
            b = self.history.pop()
            a = self.parent[b]
            self.size[a] -= self.size[b]
            self.parent[b] = b


def _tarjan(n: int, root: int, tails: np.ndarray, heads: np.ndarray, costs: np.ndarray) -> list[int]:
    """Parent edge (an index into the edges) of every node but ``root`` in the minimum
    arborescence rooted at ``root``; every node must be reachable from it.

    Each node's incoming edges form a heap; walking from a node along cheapest incoming
    edges either reaches a finished node or closes a cycle, which is contracted: its
    heaps are merged, each reduced by the cost of the cycle edge its node keeps.  The
    cycles are undone afterwards, newest first, by rolling the union-find back.
    """
    m = tails.size
    heaps = _LeftistHeaps(costs.tolist())
    # A node's incoming edges sorted by cost, chained through their left children, are
    # already a leftist heap.
    order = np.lexsort((np.arange(m), costs, heads))
    ordered_heads = heads[order]
    same = np.r_[ordered_heads[1:] == ordered_heads[:-1], False]
    heaps.left = np.where(same, np.r_[order[1:], -1], -1)[np.argsort(order)].tolist()
    heap = [-1] * n
    starts = np.flatnonzero(np.r_[True, ordered_heads[1:] != ordered_heads[:-1]]) if m else np.zeros(0, int)
    for s in starts.tolist():
        heap[int(ordered_heads[s])] = int(order[s])
    tail_of, head_of = tails.tolist(), heads.tolist()
    uf = _RollbackUnionFind(n)
    seen = [-1] * n
    seen[root] = root
    chosen = [-1] * n  # per (super)node: the edge entering it
    cycles: list[tuple[int, int, list[int]]] = []
    for start in range(n):
        u, path, edges = start, [], []
        while seen[u] < 0:
            h = heap[u]
            while h >= 0 and uf.find(tail_of[h]) == u:  # an edge inside the contracted node
                h = heaps.pop(h)
            if h < 0:
                raise ValueError(f"node {start} cannot be reached from the root")
            heaps.add(h, -heaps.top(h))
            heap[u] = heaps.pop(h)
            edges.append(h)
            path.append(u)
            seen[u] = start
            u = uf.find(tail_of[h])
            if seen[u] == start:  # a cycle: contract it into one node
                merged, end, time = -1, len(edges), len(uf.history)
                while True:
                    w = path.pop()
                    merged = heaps.merge(merged, heap[w])
                    if not uf.join(u, w):
                        break
                cycle = edges[len(path):end]
                del edges[len(path):]
                u = uf.find(u)
                heap[u], seen[u] = merged, -1
                cycles.append((u, time, cycle))
        for e in edges:
            chosen[uf.find(head_of[e])] = e
    for u, time, cycle in reversed(cycles):
        uf.rollback(time)
        entering = chosen[u]
        for e in cycle:
            chosen[uf.find(head_of[e])] = e
        chosen[uf.find(head_of[entering])] = entering
    return chosen


def sparse_minimum_arborescence(n: int, parents: np.ndarray, children: np.ndarray,
                                costs: np.ndarray, not_root: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Return the minimum spanning arborescence of a graph given by its edges.

    The sparse counterpart of :func:`minimum_arborescence`, with the same virtual root (an
    edge of prohibitive cost to every node, so the optimum picks the root): for a family
    whose tree is built on candidate edges, O(E log V) rather than O(n^3).

    Parameters
    ----------
    n : int
        Number of nodes, ``0 .. n-1``.
    parents, children, costs : array_like of shape (E,)
        Edge ``parents[e] -> children[e]`` costs ``costs[e]``.  Self-loops and edges of
        infinite cost are ignored; of parallel edges the cheapest counts.
    not_root : ndarray of bool, shape (n,), optional
        As in :func:`minimum_arborescence`: nodes the virtual root may not reach.

    Returns
    -------
    list of (int, int)
        The edges ``(parent, child)`` of the optimum, sorted: ``n - 1`` of them when some
        node reaches every other (fewer otherwise: each node without a reachable parent
        is a root of its own); empty for fewer than two nodes.

    See Also
    --------
    minimum_arborescence : the same optimum on a dense cost matrix.
    networkx.algorithms.tree.branchings.minimum_spanning_arborescence : the reference
        the tests compare with.

    Notes
    -----
    Tarjan's implementation of Chu-Liu/Edmonds [1]_ (with the correction of Camerini et
    al. [2]_): every node's incoming edges are kept in a mergeable heap (leftist trees
    with lazy cost offsets), contracted cycles are tracked with a union-find that can be
    rolled back, and the tree is recovered by undoing the contractions newest first.
    O(E log V) time, O(E) memory.  Gabow, Galil, Spencer and Tarjan [3]_ reach
    O(E + V log V) with Fibonacci heaps; at a few dozen candidate edges per model the
    logarithm is not what costs.

    References
    ----------
    .. [1] R. E. Tarjan, "Finding optimum branchings", Networks, 7(1), 25-35, 1977.
    .. [2] P. M. Camerini, L. Fratta, F. Maffioli, "A note on finding optimum
       branchings", Networks, 9(4), 309-312, 1979.
    .. [3] H. N. Gabow, Z. Galil, T. Spencer, R. E. Tarjan, "Efficient algorithms for
       finding minimum spanning trees in undirected and directed graphs",
       Combinatorica, 6(2), 109-122, 1986.

    Examples
    --------
    The dense example of :func:`minimum_arborescence` as an edge list, without the
    edges nobody needs:

    >>> sparse_minimum_arborescence(3, [0, 0, 1, 2], [1, 2, 2, 1], [1.0, 5.0, 2.0, 9.0])
    [(0, 1), (1, 2)]
    """
    if n < 2:
        return []
    parents = np.asarray(parents, dtype=np.int64).reshape(-1)
    children = np.asarray(children, dtype=np.int64).reshape(-1)
    costs = np.asarray(costs, dtype=np.float64).reshape(-1)
    if not parents.size == children.size == costs.size:
        raise ValueError("parents, children and costs must have one entry per edge")
    if parents.size and (min(parents.min(), children.min()) < 0 or max(parents.max(), children.max()) >= n):
        raise ValueError(f"edges must join nodes 0..{n - 1}")
    keep = (parents != children) & np.isfinite(costs)
    parents, children, costs = parents[keep], children[keep], costs[keep]
    big = _virtual_root_cost(costs, n)
    rootable = np.arange(n, dtype=np.int64)
    if not_root is not None:
        if np.all(not_root):
            raise ValueError("every node is ruled out as the root")
        rootable = rootable[~np.asarray(not_root, dtype=bool)]
    tails = np.concatenate([parents, np.full(rootable.size, n, dtype=np.int64)])
    heads = np.concatenate([children, rootable])
    chosen = _tarjan(n + 1, n, tails, heads, np.concatenate([costs, np.full(rootable.size, big)]))
    return sorted((int(tails[chosen[j]]), j) for j in range(n) if tails[chosen[j]] != n)
