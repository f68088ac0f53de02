"""The client's checks on what the server relays: counts, sets, keys, reveals, signatures.

Each check raises :class:`~.context.StepAborted` with the reason a client reports; none keeps
state, so every round state calls the same code.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

from secagg.crypto.keys import validate_public_key
from secagg.crypto.signing import verify_signature
from secagg.errors import CryptoError
from secagg.protocol.client.context import ClientContext, RoundGraph, StepAborted
from secagg.protocol.derive import (
    derive_graph_seed,
    round_graph,
    seed_commitment,
    signed_keys_message,
    signed_survivors_message,
)
from secagg.protocol.messages import PublicKeys
from secagg.reasons import AbortReason

__all__ = [
    "check_commitments",
    "check_count",
    "check_keys",
    "check_survivors",
    "derive_graph",
    "survivors_message",
    "verify_consistency_signatures",
]


def check_count(ctx: ClientContext, count: int, what: str) -> None:
    """Abort ``too-few-neighbours`` when ``count`` is below the threshold."""
    if count < ctx.threshold:
        raise StepAborted(
            AbortReason.TOO_FEW_NEIGHBOURS, f"only {count} {what}; threshold is {ctx.threshold}"
        )


def check_commitments(
    ctx: ClientContext, commitments: Mapping[int, bytes], own: bytes
) -> dict[int, bytes]:
    """Round 0 (malicious): the list of commitments must be well formed and carry ours."""
    checked = dict(commitments)
    n = ctx.config.num_clients
    for v, c in checked.items():
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= n:
            raise StepAborted(AbortReason.MALFORMED, "commitments must be keyed by indices 1..n")
        if not isinstance(c, bytes) or len(c) != len(own):
            raise StepAborted(AbortReason.MALFORMED, f"commitment of client {v} is not 32 bytes")
    if checked.get(ctx.index) != own:
        raise StepAborted(
            AbortReason.INCONSISTENT_SETS,
            "the commitment list does not carry this client's own commitment",
        )
    check_count(ctx, len(checked), "clients (with itself) committed")
    return checked


def derive_graph(
    ctx: ClientContext, commitments: Mapping[int, bytes], nonces: Mapping[int, bytes]
) -> RoundGraph:
    """Malicious mode: check every reveal against its commitment and derive the graph.

    A committed client without a reveal aborts the round: a server allowed to leave some
    reveals out would choose among the subsets of its own clients' reveals (PROTOCOL.md).
    """
    revealed = dict(nonces)
    missing = sorted(set(commitments) - set(revealed))
    if missing:
        raise StepAborted(
            AbortReason.MISSING_REVEAL,
            f"{len(missing)} committed clients have no revealed nonce (first: {missing[:5]})",
        )
    extra = sorted(set(revealed) - set(commitments))
    if extra:
        raise StepAborted(
            AbortReason.INCONSISTENT_SETS,
            f"nonces of {len(extra)} clients that are not in the commitment list",
        )
    for v, r in revealed.items():
        if not isinstance(r, bytes) or seed_commitment(ctx.sid, v, r) != commitments[v]:
            raise StepAborted(
                AbortReason.BAD_REVEAL, f"client {v}'s nonce does not match its commitment"
            )
    seed = derive_graph_seed(ctx.sid, revealed)
    graph = round_graph(seed, ctx.config.num_clients, ctx.config.degree)
    return RoundGraph(seed, frozenset(graph.neighbours(ctx.index)))


def check_keys(
    ctx: ClientContext,
    keys: Mapping[int, PublicKeys],
    own: PublicKeys,
    neighbours: Set[int],
    commitments: Mapping[int, bytes] | None,
) -> dict[int, PublicKeys]:
    """Round 1: the relayed keys must be ours (as sent) and our neighbours', valid, distinct;
    returns each client's two round keys (signature and commitment are spent once checked).

    ``commitments`` (malicious mode) also requires each neighbour's signature by its
    registered identity over its keys and the commitment it put on the list.
    """
    checked = dict(keys)
    mine = checked.get(ctx.index)
    if mine is None or (mine.enc_public, mine.mask_public, mine.commitment) != (
        own.enc_public,
        own.mask_public,
        own.commitment,
    ):
        raise StepAborted(AbortReason.INCONSISTENT_SETS, "server did not relay this client's keys")
    strangers = sorted(set(checked) - neighbours - {ctx.index})
    if strangers:
        raise StepAborted(
            AbortReason.INCONSISTENT_SETS,
            f"server sent keys of {len(strangers)} clients that are not neighbours",
        )
    check_count(ctx, len(checked), "neighbours (with itself) advertised keys")
    keep: dict[int, PublicKeys] = {}  # the two round keys per client, checked
    seen: set[bytes] = set()
    for v, k in checked.items():
        for public in (k.enc_public, k.mask_public):
            try:
                validate_public_key(public)
            except CryptoError:
                raise StepAborted(
                    AbortReason.INVALID_KEY, f"client {v} advertised an invalid key"
                ) from None
            if public in seen:
                raise StepAborted(AbortReason.DUPLICATE_KEY, f"client {v} reuses an advertised key")
            seen.add(public)
        if commitments is not None and v != ctx.index:
            _verify_advertisement(ctx, v, k, commitments)
        keep[v] = PublicKeys(k.enc_public, k.mask_public)
    return keep


def _verify_advertisement(
    ctx: ClientContext, v: int, keys: PublicKeys, commitments: Mapping[int, bytes]
) -> None:
    assert ctx.registry is not None  # malicious chain: the constructor required it
    identity = ctx.registry.identity_key(v)
    if identity is None:
        raise StepAborted(AbortReason.UNKNOWN_IDENTITY, f"client {v} is not in the registry")
    try:
        verify_signature(
            identity,
            keys.signature,
            signed_keys_message(ctx.sid, v, keys.enc_public, keys.mask_public, keys.commitment),
        )
    except CryptoError:
        raise StepAborted(
            AbortReason.BAD_SIGNATURE, f"client {v}'s key signature is invalid"
        ) from None
    if commitments.get(v) != keys.commitment:
        raise StepAborted(
            AbortReason.INCONSISTENT_SETS,
            f"client {v}'s signed commitment is not the one in the commitment list",
        )


def check_survivors(
    ctx: ClientContext,
    survivors: tuple[int, ...],
    shared: Set[int],
    neighbours: Set[int],
    signed: tuple[int, ...] | None = None,
) -> tuple[int, ...]:
    """Validate U3 against what this client saw; returns it as a sorted tuple.

    ``shared`` are the neighbours whose share ciphertexts arrived (U2); ``signed`` is the U3
    this client signed in the consistency round (malicious mode), which may not change.
    """
    as_list = list(survivors)
    if any(isinstance(i, bool) or not isinstance(i, int) for i in as_list):
        raise StepAborted(AbortReason.MALFORMED, "U3 must be a list of client indices")
    if as_list != sorted(set(as_list)) or (
        as_list and not 1 <= as_list[0] <= as_list[-1] <= ctx.config.num_clients
    ):
        raise StepAborted(AbortReason.MALFORMED, "U3 must be sorted, distinct, in 1..n")
    alive = set(as_list)
    if ctx.index not in alive:
        raise StepAborted(AbortReason.INCONSISTENT_SETS, "U3 does not contain this client")
    resurrected = (alive & neighbours) - shared
    if resurrected:
        raise StepAborted(
            AbortReason.INCONSISTENT_SETS,
            f"U3 names {len(resurrected)} neighbours that never sent shares (not in U2)",
        )
    if signed is not None and tuple(as_list) != signed:
        raise StepAborted(AbortReason.INCONSISTENT_SETS, "U3 changed since the consistency round")
    check_count(ctx, len(alive & (neighbours | {ctx.index})), "neighbours in U3")
    return tuple(as_list)


def survivors_message(
    ctx: ClientContext,
    graph_seed: bytes,
    peer_keys: Mapping[int, PublicKeys],
    survivors: tuple[int, ...],
    signer: int,
) -> bytes:
    """The consistency message signed by ``signer``: bound to this session's derived seed and
    to the signer's own fresh round-0 keys (which this client holds: signers that count are in
    its closed neighbourhood and in U3, so in U1)."""
    keys = peer_keys[signer]
    return signed_survivors_message(
        ctx.sid, graph_seed, ctx.context_digest, survivors, keys.enc_public, keys.mask_public
    )


def verify_consistency_signatures(
    ctx: ClientContext,
    survivors: tuple[int, ...],
    signatures: Mapping[int, bytes],
    graph: RoundGraph,
    peer_keys: Mapping[int, PublicKeys],
) -> None:
    """Round 4 (malicious): at least t distinct registered neighbours signed this U3."""
    assert ctx.registry is not None  # malicious chain: the constructor required it
    # Only signers from this client's closed neighbourhood count. Counting t signers from
    # anywhere lets a server on a sparse graph show different U3 views to different groups
    # of >= t clients each and combine the shares they reveal into one client's input
    # (tests/protocol/test_adversarial.py, multi-view attack). Each client signs one view,
    # so with t > 2(k + 1)/3 no neighbourhood can vouch for two views of one client.
    vouching = set(survivors) & (graph.neighbours | {ctx.index})
    signers: set[bytes] = set()  # distinct identities: one key listed twice counts once
    for signer, signature in signatures.items():
        if len(signers) >= ctx.threshold:
            break  # enough: checking the rest costs time and decides nothing
        if signer not in vouching:
            continue
        identity = ctx.registry.identity_key(signer)
        if identity is None or identity in signers:
            continue
        message = survivors_message(ctx, graph.seed, peer_keys, survivors, signer)
        try:
            verify_signature(identity, signature, message)
        except CryptoError:
            continue
        signers.add(identity)
    if len(signers) < ctx.threshold:
        raise StepAborted(
            AbortReason.TOO_FEW_SIGNATURES,
            f"{len(signers)} valid signatures over U3 from registered survivors among this "
            f"client and its neighbours; need {ctx.threshold}",
        )
