"""Reconstruct the secrets of round 4 and remove every mask from the running sum."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from secagg.crypto.keys import X25519KeyPair
from secagg.crypto.prg import MaskPRG
from secagg.crypto.shamir import Share, reconstruct_secret, reconstruct_secrets
from secagg.errors import InconsistentSharesError, ShareError
from secagg.graph import NeighbourGraph
from secagg.protocol.derive import pair_mask_key, self_mask_key
from secagg.reasons import AbortReason

__all__ = [
    "MaskExpander",
    "Reconstruction",
    "SecretFailure",
    "reconstruct_all",
    "removal_keys",
    "remove_masks",
]

_TOO_FEW = AbortReason.TOO_FEW_SHARES
_INCONSISTENT = AbortReason.INCONSISTENT_SHARES


@dataclass(frozen=True, slots=True)
class SecretFailure:
    """Why the secret of ``dealer`` could not be recovered."""

    dealer: int
    kind: str  # "self-mask" or "mask-key"
    reason: AbortReason  # TOO_FEW_SHARES or INCONSISTENT_SHARES
    detail: str
    bad_holders: tuple[int, ...] = ()


@dataclass(slots=True)
class Reconstruction:
    """Recovered seeds of survivors, private mask keys of dropped clients, and failures."""

    seeds: dict[int, bytes] = field(default_factory=dict)
    mask_keys: dict[int, bytes] = field(default_factory=dict)
    failures: list[SecretFailure] = field(default_factory=list)
    bad_holders: set[int] = field(default_factory=set)


def _recover(
    dealer: int, kind: str, shares: Mapping[int, Share], threshold: int, out: Reconstruction
) -> bytes | None:
    """Reconstruct one secret, dropping identified bad shares once and retrying."""
    pool = dict(shares)
    for _attempt in range(2):
        if len(pool) < threshold:
            out.failures.append(
                SecretFailure(dealer, kind, _TOO_FEW, f"{len(pool)} shares, threshold {threshold}")
            )
            return None
        try:
            return reconstruct_secret(list(pool.values()), threshold)
        except InconsistentSharesError as exc:
            if not exc.bad_points:
                out.failures.append(
                    SecretFailure(
                        dealer,
                        kind,
                        _INCONSISTENT,
                        "shares disagree and the bad ones cannot be told apart",
                    )
                )
                return None
            out.bad_holders.update(exc.bad_points)
            for x in exc.bad_points:
                pool.pop(x, None)
        except ShareError as exc:
            out.failures.append(SecretFailure(dealer, kind, _INCONSISTENT, str(exc)))
            return None
    out.failures.append(SecretFailure(dealer, kind, _INCONSISTENT, "shares disagree"))
    return None


def reconstruct_all(
    seed_shares: Mapping[int, Mapping[int, Share]],
    key_shares: Mapping[int, Mapping[int, Share]],
    mask_publics: Mapping[int, bytes],
    threshold: int,
) -> Reconstruction:
    """Recover b_v for each survivor and s_sk_v for each dropped client.

    Every secret goes through one batched reconstruction; only the secrets it cannot rebuild
    (too few or inconsistent shares) take the one-by-one path that names and drops bad shares.
    A recovered private mask key must match the public key the client advertised; one that
    does not is a failure (the shares were bad even though they looked consistent).
    """
    out = Reconstruction()
    jobs = [(dealer, "self-mask", shares) for dealer, shares in seed_shares.items()]
    jobs += [(dealer, "mask-key", shares) for dealer, shares in key_shares.items()]
    first = reconstruct_secrets([list(shares.values()) for _, _, shares in jobs], threshold)
    for (dealer, kind, shares), got in zip(jobs, first, strict=True):
        secret = got if isinstance(got, bytes) else _recover(dealer, kind, shares, threshold, out)
        if secret is None:
            continue
        if kind == "self-mask":
            out.seeds[dealer] = secret
            continue
        if X25519KeyPair.from_private_bytes(secret).public_bytes != mask_publics[dealer]:
            out.failures.append(
                SecretFailure(
                    dealer,
                    "mask-key",
                    _INCONSISTENT,
                    "recovered key does not match the advertised public key",
                )
            )
            continue
        out.mask_keys[dealer] = secret
    return out


# Adds (flag False) or subtracts (flag True) each key's mask into the vector, mod 2^bits.
MaskExpander = Callable[[npt.NDArray[np.unsignedinteger], int, list[tuple[bytes, bool]]], None]


def _expand_here(
    total: npt.NDArray[np.unsignedinteger], bits: int, keys: list[tuple[bytes, bool]]
) -> None:
    MaskPRG(bits).add_many(total, keys)


def removal_keys(
    session_id: bytes,
    graph: NeighbourGraph,
    survivors: Iterable[int],
    recovered: Reconstruction,
    mask_publics: Mapping[int, bytes],
) -> list[tuple[bytes, bool]]:
    """The masks to take off the running sum: (PRG key, subtract?) pairs.

    One self mask per survivor, and one pairwise mask per (dropped client, surviving neighbour).
    """
    alive = frozenset(survivors)
    keys: list[tuple[bytes, bool]] = [
        (self_mask_key(seed, session_id, w), True) for w, seed in sorted(recovered.seeds.items())
    ]
    for v, private in sorted(recovered.mask_keys.items()):
        pair = X25519KeyPair.from_private_bytes(private)
        for w in graph.neighbours(v):
            if w not in alive:
                continue
            key = pair_mask_key(pair, mask_publics[w], session_id, v, w)
            # Survivor w added +mask if w < v and -mask if w > v; undo exactly that.
            keys.append((key, w < v))
    return keys


def remove_masks(
    total: npt.NDArray[np.unsignedinteger],
    bits: int,
    session_id: bytes,
    graph: NeighbourGraph,
    survivors: Iterable[int],
    recovered: Reconstruction,
    mask_publics: Mapping[int, bytes],
    expand: MaskExpander | None = None,
) -> None:
    """Subtract survivors' self masks and cancel dropped clients' pairwise masks, in place.

    ``expand`` does the mask expansion (default: in this process); a process pool can be
    passed to spread it over cores (see :mod:`secagg.parallel.pool`).
    """
    keys = removal_keys(session_id, graph, survivors, recovered, mask_publics)
    (expand or _expand_here)(total, bits, keys)
