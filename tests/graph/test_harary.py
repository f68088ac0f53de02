"""NeighbourGraph: structure, determinism, the documented derivation, validation, speed."""

from __future__ import annotations

import hashlib
from collections import Counter, deque
from collections.abc import Iterator, Sequence

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from secagg.errors import ConfigError
from secagg.graph import NeighbourGraph

# Pinned output of the derivation: changing it breaks interoperability between versions.
KAT_SEED = b"secagg kat"
KAT_NEIGHBOURS = {
    1: (2, 3, 8, 9),
    2: (1, 4, 7, 8),
    3: (1, 8, 9, 10),
    4: (2, 5, 6, 7),
    5: (4, 6, 9, 10),
    6: (4, 5, 7, 10),
    7: (2, 4, 6, 8),
    8: (1, 2, 3, 7),
    9: (1, 3, 5, 10),
    10: (3, 5, 6, 9),
}


@st.composite
def graphs(draw: st.DrawFn) -> tuple[bytes, list[int], int]:
    n = draw(st.integers(2, 60))
    indices = draw(st.lists(st.integers(1, 10_000), min_size=n, max_size=n, unique=True))
    sparse = list(range(2, n - 1, 2))
    degree = draw(st.sampled_from([*sparse, n - 1]))
    seed = draw(st.binary(min_size=1, max_size=40))
    return seed, indices, degree


def _reference_order(seed: bytes, indices: Sequence[int]) -> list[int]:
    """The permutation exactly as harary.py's docstring specifies it, written independently."""
    key = hashlib.sha256(b"secagg/v1/graph" + seed).digest()[:16]
    enc = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()

    def words() -> Iterator[int]:
        while True:
            yield int.from_bytes(enc.update(bytes(8)), "little")

    stream = words()
    order = sorted(indices)
    for i in range(len(order) - 1, 0, -1):
        bound = i + 1
        w = next(stream)
        while w >= 2**64 - 2**64 % bound:
            w = next(stream)
        j = w % bound
        order[i], order[j] = order[j], order[i]
    return order


def _is_connected(g: NeighbourGraph) -> bool:
    start = g.indices[0]
    seen, queue = {start}, deque([start])
    while queue:
        for v in g.neighbours(queue.popleft()):
            if v not in seen:
                seen.add(v)
                queue.append(v)
    return len(seen) == g.n


@settings(max_examples=60, deadline=None)
@given(graphs())
def test_every_client_has_k_sorted_neighbours_and_the_relation_is_symmetric(
    case: tuple[bytes, list[int], int],
) -> None:
    seed, indices, degree = case
    g = NeighbourGraph(seed, indices, degree)
    assert g.indices == tuple(sorted(indices))
    assert g.degree == degree
    assert g.n == len(indices)
    for i in g.indices:
        nbrs = g.neighbours(i)
        assert len(nbrs) == degree
        assert len(set(nbrs)) == degree
        assert list(nbrs) == sorted(nbrs)
        assert i not in nbrs
        assert not g.are_neighbours(i, i)
        for j in g.indices:
            assert g.are_neighbours(i, j) == (j in nbrs) == g.are_neighbours(j, i)
    assert _is_connected(g)


@settings(max_examples=30, deadline=None)
@given(graphs())
def test_matches_the_documented_derivation(case: tuple[bytes, list[int], int]) -> None:
    seed, indices, degree = case
    g = NeighbourGraph(seed, indices, degree)
    order = _reference_order(seed, indices)
    n, half = len(order), degree // 2
    for p, v in enumerate(order):
        if degree == n - 1:
            expected = sorted(set(order) - {v})
        else:
            expected = sorted(order[(p + d) % n] for d in range(-half, half + 1) if d)
        assert g.neighbours(v) == tuple(expected)


def test_known_answer() -> None:
    g = NeighbourGraph(KAT_SEED, range(1, 11), 4)
    assert {i: g.neighbours(i) for i in g.indices} == KAT_NEIGHBOURS


def test_order_of_indices_is_irrelevant_and_numpy_ints_are_accepted() -> None:
    indices = [7, 3, 100, 42, 5, 11, 64, 9]
    a = NeighbourGraph(b"seed", indices, 4)
    b = NeighbourGraph(b"seed", sorted(indices, reverse=True), 4)
    c = NeighbourGraph(b"seed", np.array(indices, dtype=np.int64), 4)
    for i in indices:
        assert a.neighbours(i) == b.neighbours(i) == c.neighbours(i)
    assert all(type(i) is int for i in c.indices)


def test_same_seed_same_graph_and_other_seeds_other_graphs() -> None:
    def edges(seed: bytes) -> frozenset[tuple[int, int]]:
        g = NeighbourGraph(seed, range(1, 51), 6)
        return frozenset((i, j) for i in g.indices for j in g.neighbours(i) if i < j)

    assert edges(b"one") == edges(b"one")
    graphs_seen = {edges(bytes([s])) for s in range(20)}
    assert len(graphs_seen) == 20


def test_permutations_look_uniform() -> None:
    # On 4 clients with k = 2 there are 3 distinct rings; each should get about a third.
    counts: Counter[frozenset[int]] = Counter()
    for s in range(600):
        g = NeighbourGraph(s.to_bytes(2, "big"), range(1, 5), 2)
        counts[frozenset(g.neighbours(1))] += 1
    assert len(counts) == 3
    assert all(150 <= c <= 250 for c in counts.values()), counts  # mean 200, sd ~11.5


@pytest.mark.parametrize("n", [2, 3, 4, 9, 30])
def test_complete_graph(n: int) -> None:
    g = NeighbourGraph(b"s", range(1, n + 1), n - 1)
    assert g.is_complete
    for i in g.indices:
        assert g.neighbours(i) == tuple(j for j in range(1, n + 1) if j != i)


def test_sparse_graph_is_not_complete_and_non_neighbours_exist() -> None:
    g = NeighbourGraph(b"s", range(1, 21), 4)
    assert not g.is_complete
    assert sum(g.are_neighbours(1, j) for j in range(2, 21)) == 4


def test_unregistered_clients() -> None:
    g = NeighbourGraph(b"s", range(1, 11), 4)
    with pytest.raises(ConfigError, match="client 11 is not registered"):
        g.neighbours(11)
    assert not g.are_neighbours(1, 11)


@pytest.mark.parametrize(
    ("seed", "indices", "degree", "message"),
    [
        (b"", range(1, 5), 2, "non-empty bytes, got 0 bytes"),
        ("seed", range(1, 5), 2, "non-empty bytes, got str"),
        (b"s", [1, 2, 2, 3], 2, "distinct, but 2 appears more than once"),
        (b"s", [0, 1, 2, 3], 2, r"client index must be >= 1, got 0"),
        (b"s", [-4, 1, 2, 3], 2, r"client index must be >= 1, got -4"),
        (b"s", [1, 2, True, 3], 2, "client index must be an integer, got True"),
        (b"s", [1, 2, 3.0, 4], 2, "client index must be an integer, got 3.0"),
        (b"s", [1], 0, "n must be >= 2 .* got 1"),
        (b"s", [], 0, "n must be >= 2 .* got 0"),
        (
            b"s",
            range(1, 11),
            3,
            r"n - 1 = 9 \(the complete graph\) or an even number in 2..8 .*got 3",
        ),
        (b"s", range(1, 11), 10, "got 10"),
        (b"s", range(1, 11), 0, "got 0"),
        (b"s", range(1, 4), 1, r"n - 1 = 2 \(the complete graph\) for n = 3 clients, got 1"),
        (b"s", range(1, 11), 4.0, "degree k must be an integer, got 4.0"),
    ],
)
def test_validation(seed: bytes, indices: Sequence[int], degree: int, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        NeighbourGraph(seed, indices, degree)


def test_a_5000_client_graph_is_regular_and_symmetric() -> None:
    # Speed is a benchmark's business (machines are noisy); here: a large graph is right.
    g = NeighbourGraph(bytes(32), range(1, 5001), 40)
    for i in range(1, 5001, 10):
        near = g.neighbours(i)
        assert len(set(near)) == 40
        assert i not in near
        assert all(i in g.neighbours(v) for v in near)
