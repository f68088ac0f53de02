"""reconstruct_all over many dealers: the batched pass keeps the one-by-one robustness."""

from __future__ import annotations

import random

import pytest

from secagg.crypto.entropy import DeterministicRandom
from secagg.crypto.keys import X25519KeyPair
from secagg.crypto.shamir import PRIME, Share, split_secret
from secagg.graph import NeighbourGraph
from secagg.protocol.server.unmask import reconstruct_all

N, K, T = 60, 12, 8


def lying(share: Share) -> Share:
    values = list(share.values)
    values[0] = (values[0] + 1) % PRIME
    return Share(share.x, tuple(values))


def round_inputs(
    liar: int | None = None,
) -> tuple[
    dict[int, dict[int, Share]],
    dict[int, dict[int, Share]],
    dict[int, bytes],
    dict[int, bytes],
    dict[int, bytes],
]:
    """Shares the server holds in a sparse round where clients 1..6 dropped after sharing."""
    rnd = random.Random(3)
    graph = NeighbourGraph(bytes(32), range(1, N + 1), K)
    keys = {u: X25519KeyPair.generate(DeterministicRandom(u)) for u in range(1, N + 1)}
    dropped = set(range(1, 7))
    seeds = {u: rnd.randbytes(32) for u in range(1, N + 1) if u not in dropped}
    seed_shares: dict[int, dict[int, Share]] = {}
    key_shares: dict[int, dict[int, Share]] = {}
    for v in range(1, N + 1):
        holders = sorted({v, *graph.neighbours(v)})
        secret = keys[v].private_bytes() if v in dropped else seeds[v]
        held = {
            s.x: Share.from_bytes((lying(s) if s.x == liar else s).to_bytes())
            for s in split_secret(secret, holders, T)
            if s.x not in dropped
        }
        (key_shares if v in dropped else seed_shares)[v] = held
    publics = {u: k.public_bytes for u, k in keys.items()}
    privates = {u: keys[u].private_bytes() for u in dropped}
    return seed_shares, key_shares, publics, seeds, privates


def test_every_secret_of_a_sparse_round_is_recovered() -> None:
    seed_shares, key_shares, publics, seeds, privates = round_inputs()
    out = reconstruct_all(seed_shares, key_shares, publics, T)
    assert out.seeds == seeds
    assert out.mask_keys == privates
    assert out.failures == []
    assert out.bad_holders == set()


@pytest.mark.adversarial
def test_a_holder_revealing_bad_shares_is_named_and_every_secret_still_recovered() -> None:
    """Client 30 lies in every share it reveals: it is named, and the rest rebuild all secrets."""
    seed_shares, key_shares, publics, seeds, privates = round_inputs(liar=30)
    out = reconstruct_all(seed_shares, key_shares, publics, T)
    assert out.bad_holders == {30}
    assert out.seeds == seeds
    assert out.mask_keys == privates
    assert out.failures == []


@pytest.mark.adversarial
def test_too_few_shares_and_a_forged_key_are_failures_of_their_dealer_only() -> None:
    seed_shares, key_shares, publics, seeds, privates = round_inputs()
    seed_shares[40] = dict(list(seed_shares[40].items())[: T - 1])
    publics = {**publics, 2: publics[3]}  # dealer 2's advertised key no longer matches
    out = reconstruct_all(seed_shares, key_shares, publics, T)
    assert {(f.dealer, f.kind, f.reason) for f in out.failures} == {
        (40, "self-mask", "too-few-shares"),
        (2, "mask-key", "inconsistent-shares"),
    }
    assert out.seeds == {u: s for u, s in seeds.items() if u != 40}
    assert out.mask_keys == {u: k for u, k in privates.items() if u != 2}
