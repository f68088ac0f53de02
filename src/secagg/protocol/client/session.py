"""The client side of a round as a sans-IO state machine.

``start()`` returns the first message; ``receive(msg)`` takes each server message and returns
the reply (or None). Bad or inconsistent server input never raises: the session moves to
ABORTED, remembers why, and returns an :class:`Abort` to send. Using the session wrongly (a call
illegal in its state) raises :class:`LocalProtocolError`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from secagg.crypto import aead
from secagg.crypto.entropy import RandomSource, default_random
from secagg.crypto.keys import X25519KeyPair, validate_public_key
from secagg.crypto.prg import MaskPRG, ring_mask, word_dtype
from secagg.crypto.shamir import SECRET_BYTES, Share, split_secrets
from secagg.crypto.signing import SigningKey, verify_signature
from secagg.errors import (
    ConfigError,
    CryptoError,
    DecryptionError,
    LocalProtocolError,
    UnsafeParametersError,
)
from secagg.graph import NeighbourGraph
from secagg.protocol.client.state import ClientState
from secagg.protocol.config import RoundConfig
from secagg.protocol.derive import (
    NONCE_BYTES,
    decode_share_plaintext,
    derive_graph_seed,
    enc_key,
    encode_share_plaintext,
    pair_mask_key,
    round_graph,
    seed_commitment,
    self_mask_key,
    share_aad,
    signed_keys_message,
    signed_survivors_message,
)
from secagg.protocol.identity import IdentityRegistry
from secagg.protocol.messages import (
    Abort,
    AdvertiseKeys,
    ClientMessage,
    CommitmentsBroadcast,
    ConsistencyRequest,
    ConsistencySignature,
    EncryptedShares,
    KeysBroadcast,
    MaskedInput,
    PublicKeys,
    RevealNonce,
    RoundComplete,
    ServerMessage,
    SharesDelivery,
    UnmaskRequest,
    UnmaskResponse,
)
from secagg.protocol.policy import ClientPolicy
from secagg.reasons import AbortReason

__all__ = ["ClientSession"]


class _Abort(Exception):  # noqa: N818 - internal control flow, never escapes the session
    def __init__(self, reason: AbortReason, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class _HeldShares:
    key_share: Share  # share of the dealer's s_sk
    seed_share: Share  # share of the dealer's b


class ClientSession:
    """One client's part in one round.

    ``data`` is the client's vector: ``dim`` non-negative integers below 2^bits. ``graph`` may be
    passed to share one precomputed neighbour graph between many sessions of the same round.
    Malicious mode needs ``identity`` (this client's signing key) and ``registry``; the client
    then also requires ``expected_context_digest``, the digest it computed itself of what the
    server gave it, to equal the config's. In malicious mode the graph is not known up front:
    the clients derive its seed by commit-reveal (a commitment with the keys, the nonce after
    the server fixed the list of commitments), so ``graph`` must not be passed;
    :attr:`graph_seed` holds the seed this client derived (None until then).

    ``policy`` is this client's own floor on n, k and t (default :class:`ClientPolicy()`:
    5% corrupt, 5% dropping, 2^-40); :meth:`start` aborts with ``unsafe-parameters`` when the
    config is below it, before any key is made or anything is revealed.

    ``expected_spec_digest`` (any mode) is the digest of the spec this client encoded ``data``
    with (:mod:`secagg.encoding.round_spec`); a round announcing another spec is refused with
    ``spec-mismatch`` before anything is sent.
    """

    def __init__(
        self,
        config: RoundConfig,
        index: int,
        data: npt.ArrayLike,
        *,
        rng: RandomSource | None = None,
        graph: NeighbourGraph | None = None,
        identity: SigningKey | None = None,
        registry: IdentityRegistry | None = None,
        expected_context_digest: bytes | None = None,
        policy: ClientPolicy | None = None,
        expected_spec_digest: bytes | None = None,
    ) -> None:
        if not 1 <= index <= config.num_clients:
            raise ConfigError(f"client index must be in 1..{config.num_clients}, got {index}")
        if config.mode == "malicious" and (identity is None or registry is None):
            raise ConfigError("malicious mode needs an identity key and an identity registry")
        if config.mode != "malicious" and (identity is not None or registry is not None):
            # A client that holds an identity expects signatures and the consistency round; a
            # config that says otherwise comes from a server trying to switch them off.
            raise ConfigError(
                f"this client has an identity but the round config's mode is {config.mode!r}: "
                "refusing to run without malicious-mode checks"
            )
        self.config = config
        self.index = index
        self._sid = config.session_id
        self._rng = rng or default_random()
        if config.mode == "malicious" and graph is not None:
            raise ConfigError(
                "a malicious-mode graph is derived from the clients' nonces; do not pass graph="
            )
        self._graph: NeighbourGraph | None = None
        self._neighbours: frozenset[int] = frozenset()
        if config.mode != "malicious":
            self._set_graph(
                graph or round_graph(config.graph_seed, config.num_clients, config.degree)
            )
        self._identity = identity
        self._registry = registry
        self._policy = ClientPolicy() if policy is None else policy
        # What this client signs is its own view of the context, never the server's claim.
        self._context_digest = (
            config.context_digest if expected_context_digest is None else expected_context_digest
        )
        # The spec this client encoded its data with (None: it takes the round's as given).
        self._spec_digest = expected_spec_digest
        self._data = _as_ring_vector(data, config)
        self.state = ClientState.NEW
        self.abort_reason: AbortReason | None = None
        self.abort_detail = ""
        self.included: tuple[int, ...] | None = None
        # Round state, filled as the round goes.
        self._enc_keys: X25519KeyPair | None = None
        self._mask_keys: X25519KeyPair | None = None
        self._peer_keys: dict[int, PublicKeys] = {}
        self._seed = b""
        self._own_shares: _HeldShares | None = None
        self._ciphertexts: dict[int, bytes] = {}  # from neighbours in U2
        # AES keys for share ciphertexts, kept from round 1 so round 4 need not redo X25519.
        self._share_keys: dict[int, bytes] = {}
        self._survivors: tuple[int, ...] | None = None
        # Malicious mode: this client's nonce r_u, its commitment, the list of commitments the
        # server fixed, and the graph seed derived from the reveals.
        self._nonce = b""
        self._commitment = b""
        self._commitments: dict[int, bytes] = {}
        self.graph_seed: bytes | None = None if config.mode == "malicious" else config.graph_seed

    # -- public API ---------------------------------------------------------------------------

    @property
    def neighbours(self) -> frozenset[int]:
        """This client's neighbours in the round's graph (excluding itself).

        In malicious mode they are known only once the KeysBroadcast's nonces gave the seed.
        """
        if self._graph is None:
            raise LocalProtocolError(
                "the neighbours of a malicious-mode round are known after the nonces are revealed"
            )
        return self._neighbours

    def start(self) -> AdvertiseKeys | Abort:
        """Round 0: make the round's key pairs and advertise the public halves.

        Returns an :class:`Abort` instead when the config's n, k and t are below this client's
        policy (``unsafe-parameters``), or when this client's own context digest differs from
        the one in the config (the server handed it something other than what it announced).
        """
        self._require(ClientState.NEW, "start")
        try:
            self._policy.check(self.config)
        except UnsafeParametersError as exc:
            return self._enter_abort(AbortReason.UNSAFE_PARAMETERS, str(exc))
        if self._context_digest != self.config.context_digest:
            return self._enter_abort(
                AbortReason.CONTEXT_MISMATCH,
                "the config's context digest differs from the one this client computed",
            )
        if self._spec_digest is not None and self._spec_digest != self.config.spec_digest:
            return self._enter_abort(
                AbortReason.SPEC_MISMATCH,
                "the round's spec digest differs from the spec this client encoded its data with",
            )
        self._enc_keys = X25519KeyPair.generate(self._rng)
        self._mask_keys = X25519KeyPair.generate(self._rng)
        enc_pub, mask_pub = self._enc_keys.public_bytes, self._mask_keys.public_bytes
        signature = b""
        if self._identity is not None and self.config.mode == "malicious":
            # Fresh per session: it enters this client's own view of the graph seed, so no
            # server can pick or predict the graph this client uses.
            self._nonce = self._rng.random_bytes(NONCE_BYTES)
            self._commitment = seed_commitment(self._sid, self.index, self._nonce)
            signature = self._identity.sign(
                signed_keys_message(self._sid, self.index, enc_pub, mask_pub, self._commitment)
            )
            self.state = ClientState.AWAIT_COMMITMENTS
        else:
            self.state = ClientState.AWAIT_KEYS
        return AdvertiseKeys(
            self._sid, self.index, PublicKeys(enc_pub, mask_pub, signature, self._commitment)
        )

    def receive(self, msg: ServerMessage) -> ClientMessage | None:
        """Handle one server message; returns the reply to send, if any."""
        if self.state in (ClientState.DONE, ClientState.ABORTED) or (
            self.state is ClientState.NEW and not isinstance(msg, Abort)
        ):
            raise LocalProtocolError(f"client session is {self.state.value}; cannot receive")
        try:
            if msg.session_id != self._sid:
                raise _Abort(AbortReason.WRONG_SESSION, "message is for another session") from None
            return self._dispatch(msg)
        except _Abort as exc:
            return self._enter_abort(exc.reason, exc.detail)
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
            # Fields of the wrong type or shape from the server: abort, never raise.
            return self._enter_abort(
                AbortReason.MALFORMED, f"malformed server message ({type(exc).__name__})"
            )

    @property
    def aborted(self) -> bool:
        """True once the session has aborted."""
        return self.state is ClientState.ABORTED

    # -- rounds -------------------------------------------------------------------------------

    def _dispatch(self, msg: ServerMessage) -> ClientMessage | None:
        match msg:
            case Abort(reason=reason, detail=detail):
                self._enter_abort(
                    AbortReason.SERVER_ABORTED, f"server aborted ({reason}): {detail}"
                )
                return None
            case CommitmentsBroadcast() if self.state is ClientState.AWAIT_COMMITMENTS:
                return self._on_commitments(msg)
            case KeysBroadcast() if self.state is ClientState.AWAIT_KEYS:
                return self._on_keys(msg)
            case SharesDelivery() if self.state is ClientState.AWAIT_SHARES:
                return self._on_shares(msg)
            case ConsistencyRequest() if (
                self.state is ClientState.AWAIT_CONSISTENCY and self.config.mode == "malicious"
            ):
                return self._on_consistency(msg)
            case UnmaskRequest() if self.state is ClientState.AWAIT_UNMASK or (
                self.state is ClientState.AWAIT_CONSISTENCY and self.config.mode == "semi-honest"
            ):
                return self._on_unmask(msg)
            case UnmaskRequest() if self.state is ClientState.AWAIT_RESULT:
                # Answering again could reveal the other kind of share for some neighbour.
                raise _Abort(
                    AbortReason.BOTH_SHARES_REQUESTED,
                    "a second unmask request: one share per neighbour was already revealed",
                )
            case RoundComplete() if self.state is ClientState.AWAIT_RESULT:
                self._on_complete(msg)
                return None
        raise _Abort(
            AbortReason.UNEXPECTED_MESSAGE,
            f"{type(msg).__name__} is not expected in state {self.state.value}",
        )

    def _on_commitments(self, msg: CommitmentsBroadcast) -> RevealNonce:
        """Round 0 (malicious mode): the server fixed the list of commitments; reveal r_u.

        Our nonce leaves only now, after our view of every commitment is fixed, so whatever
        the others committed to, the seed in our view is uniformly random.
        """
        commitments = dict(msg.commitments)
        n = self.config.num_clients
        for v, c in commitments.items():
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= n:
                raise _Abort(AbortReason.MALFORMED, "commitments must be keyed by indices 1..n")
            if not isinstance(c, bytes) or len(c) != len(self._commitment):
                raise _Abort(AbortReason.MALFORMED, f"commitment of client {v} is not 32 bytes")
        if commitments.get(self.index) != self._commitment:
            raise _Abort(
                AbortReason.INCONSISTENT_SETS,
                "the commitment list does not carry this client's own commitment",
            )
        self._check_count(len(commitments), "clients (with itself) committed")
        self._commitments = commitments
        self.state = ClientState.AWAIT_KEYS
        return RevealNonce(self._sid, self.index, self._nonce)

    def _derive_graph(self, nonces: Mapping[int, bytes]) -> None:
        """Malicious mode: check every reveal against its commitment and derive the graph.

        A committed client without a reveal aborts the round: a server allowed to leave some
        reveals out would choose among the subsets of its own clients' reveals (PROTOCOL.md).
        """
        revealed = dict(nonces)
        missing = sorted(set(self._commitments) - set(revealed))
        if missing:
            raise _Abort(
                AbortReason.MISSING_REVEAL,
                f"{len(missing)} committed clients have no revealed nonce (first: {missing[:5]})",
            )
        extra = sorted(set(revealed) - set(self._commitments))
        if extra:
            raise _Abort(
                AbortReason.INCONSISTENT_SETS,
                f"nonces of {len(extra)} clients that are not in the commitment list",
            )
        for v, r in revealed.items():
            if not isinstance(r, bytes) or seed_commitment(self._sid, v, r) != self._commitments[v]:
                raise _Abort(
                    AbortReason.BAD_REVEAL, f"client {v}'s nonce does not match its commitment"
                )
        self.graph_seed = derive_graph_seed(self._sid, revealed)
        self._set_graph(round_graph(self.graph_seed, self.config.num_clients, self.config.degree))

    def _on_keys(self, msg: KeysBroadcast) -> EncryptedShares:
        """Round 1: check the neighbours' keys, share our secrets, encrypt the shares."""
        assert self._enc_keys is not None
        assert self._mask_keys is not None
        if self.config.mode == "malicious":
            self._derive_graph(msg.nonces)
        keys = dict(msg.keys)
        own = keys.get(self.index)
        if own is None or (own.enc_public, own.mask_public, own.commitment) != (
            self._enc_keys.public_bytes,
            self._mask_keys.public_bytes,
            self._commitment,
        ):
            raise _Abort(AbortReason.INCONSISTENT_SETS, "server did not relay this client's keys")
        strangers = sorted(set(keys) - self._neighbours - {self.index})
        if strangers:
            raise _Abort(
                AbortReason.INCONSISTENT_SETS,
                f"server sent keys of {len(strangers)} clients that are not neighbours",
            )
        self._check_count(len(keys), "neighbours (with itself) advertised keys")
        seen: set[bytes] = set()
        for v, k in keys.items():
            for public in (k.enc_public, k.mask_public):
                try:
                    validate_public_key(public)
                except CryptoError:
                    raise _Abort(
                        AbortReason.INVALID_KEY, f"client {v} advertised an invalid key"
                    ) from None
                if public in seen:
                    raise _Abort(AbortReason.DUPLICATE_KEY, f"client {v} reuses an advertised key")
                seen.add(public)
            if self.config.mode == "malicious" and v != self.index:
                self._verify_advertisement(v, k)
        self._peer_keys = keys
        holders = sorted(keys)  # closed neighbourhood in U1, including this client
        self._seed = self._rng.random_bytes(SECRET_BYTES)
        t = self.config.threshold
        # One pass for both secrets; the same random draws as splitting key, then seed.
        key_shares, seed_shares = split_secrets(
            [self._mask_keys.private_bytes(), self._seed], holders, t, self._rng
        )
        ciphertexts: dict[int, bytes] = {}
        for v, key_share, seed_share in zip(holders, key_shares, seed_shares, strict=True):
            if v == self.index:
                self._own_shares = _HeldShares(key_share, seed_share)
                continue
            try:
                key = enc_key(self._enc_keys, keys[v].enc_public, self._sid, self.index, v)
            except CryptoError:
                raise _Abort(
                    AbortReason.INVALID_KEY, f"key agreement with client {v} failed"
                ) from None
            self._share_keys[v] = key
            plaintext = encode_share_plaintext(self.index, v, key_share, seed_share)
            ciphertexts[v] = aead.seal(
                key, plaintext, share_aad(self._sid, self.index, v), self._rng
            )
        self.state = ClientState.AWAIT_SHARES
        return EncryptedShares(self._sid, self.index, ciphertexts)

    def _on_shares(self, msg: SharesDelivery) -> MaskedInput:
        """Round 2: keep the shares sent to us, mask the input."""
        assert self._mask_keys is not None
        senders = set(msg.ciphertexts)
        unknown = senders - (set(self._peer_keys) - {self.index})
        if unknown:
            raise _Abort(
                AbortReason.INCONSISTENT_SETS,
                f"server delivered shares from {len(unknown)} clients not in U1 among neighbours",
            )
        self._check_count(len(senders) + 1, "neighbours (with itself) sent shares")
        self._ciphertexts = dict(msg.ciphertexts)
        masks: list[tuple[bytes, bool]] = [
            (self_mask_key(self._seed, self._sid, self.index), False)
        ]
        for v in sorted(senders):
            try:
                key = pair_mask_key(
                    self._mask_keys, self._peer_keys[v].mask_public, self._sid, self.index, v
                )
            except CryptoError:
                raise _Abort(
                    AbortReason.INVALID_KEY, f"key agreement with client {v} failed"
                ) from None
            # The smaller index adds the pairwise mask and the larger subtracts it.
            masks.append((key, v < self.index))
        masked = self._data.copy()
        MaskPRG(self.config.bits).add_many(masked, masks)
        self.state = ClientState.AWAIT_CONSISTENCY
        return MaskedInput(self._sid, self.index, masked)

    def _on_consistency(self, msg: ConsistencyRequest) -> ConsistencySignature:
        """Round 3 (malicious mode): check U3 and sign (session_id, context_digest, U3)."""
        assert self._identity is not None
        survivors = self._check_survivors(msg.survivors)
        self._survivors = survivors
        # The state machine lets this run once per session: one signed U3 view, never two.
        signature = self._identity.sign(self._survivors_message(survivors, self.index))
        self.state = ClientState.AWAIT_UNMASK
        return ConsistencySignature(self._sid, self.index, signature)

    def _on_unmask(self, msg: UnmaskRequest) -> UnmaskResponse:
        """Round 4: reveal, per neighbour in U2, the share of b_v or of s_sk_v, never both."""
        survivors = self._check_survivors(msg.survivors)
        if self.config.mode == "malicious":
            if survivors != self._survivors:
                raise _Abort(
                    AbortReason.INCONSISTENT_SETS,
                    "U3 in the unmask request differs from the one this client signed",
                )
            self._verify_consistency_signatures(survivors, msg.signatures)
        alive = frozenset(survivors)
        self_mask_shares: dict[int, bytes] = {}
        key_shares: dict[int, bytes] = {}
        assert self._own_shares is not None
        held = {self.index: self._own_shares}
        for v, blob in self._ciphertexts.items():
            try:
                key = self._share_keys[v]
                plaintext = aead.open_sealed(key, blob, share_aad(self._sid, v, self.index))
                key_share, seed_share = decode_share_plaintext(plaintext, v, self.index)
            except (DecryptionError, CryptoError):
                # v (or the server) sent garbage: leave v's shares out; the server names v if
                # too few remain. Aborting here would let one bad client stop everyone.
                continue
            held[v] = _HeldShares(key_share, seed_share)
        for v, shares in held.items():
            if v in alive:
                self_mask_shares[v] = shares.seed_share.to_bytes()
            else:
                key_shares[v] = shares.key_share.to_bytes()
        self.state = ClientState.AWAIT_RESULT
        return UnmaskResponse(self._sid, self.index, self_mask_shares, key_shares)

    def _on_complete(self, msg: RoundComplete) -> None:
        if self._survivors is not None and tuple(msg.included) != self._survivors:
            raise _Abort(AbortReason.INCONSISTENT_SETS, "final set differs from U3") from None
        self.included = tuple(msg.included)
        self.state = ClientState.DONE
        self._drop_secrets()

    # -- checks -------------------------------------------------------------------------------

    def _check_count(self, count: int, what: str) -> None:
        if count < self.config.threshold:
            raise _Abort(
                AbortReason.TOO_FEW_NEIGHBOURS,
                f"only {count} {what}; threshold is {self.config.threshold}",
            )

    def _check_survivors(self, survivors: tuple[int, ...]) -> tuple[int, ...]:
        """Validate U3 against what this client saw; returns it as a sorted tuple."""
        as_list = list(survivors)
        if any(isinstance(i, bool) or not isinstance(i, int) for i in as_list):
            raise _Abort(AbortReason.MALFORMED, "U3 must be a list of client indices") from None
        if as_list != sorted(set(as_list)) or (
            as_list and not 1 <= as_list[0] <= as_list[-1] <= self.config.num_clients
        ):
            raise _Abort(AbortReason.MALFORMED, "U3 must be sorted, distinct, in 1..n") from None
        alive = set(as_list)
        if self.index not in alive:
            raise _Abort(AbortReason.INCONSISTENT_SETS, "U3 does not contain this client") from None
        shared = set(self._ciphertexts)
        resurrected = (alive & self._neighbours) - shared
        if resurrected:
            raise _Abort(
                AbortReason.INCONSISTENT_SETS,
                f"U3 names {len(resurrected)} neighbours that never sent shares (not in U2)",
            )
        if self._survivors is not None and tuple(as_list) != self._survivors:
            raise _Abort(AbortReason.INCONSISTENT_SETS, "U3 changed since the consistency round")
        self._check_count(len(alive & (self._neighbours | {self.index})), "neighbours in U3")
        return tuple(as_list)

    def _verify_advertisement(self, v: int, keys: PublicKeys) -> None:
        assert self._registry is not None
        identity = self._registry.identity_key(v)
        if identity is None:
            raise _Abort(AbortReason.UNKNOWN_IDENTITY, f"client {v} is not in the registry")
        try:
            verify_signature(
                identity,
                keys.signature,
                signed_keys_message(
                    self._sid, v, keys.enc_public, keys.mask_public, keys.commitment
                ),
            )
        except CryptoError:
            raise _Abort(
                AbortReason.BAD_SIGNATURE, f"client {v}'s key signature is invalid"
            ) from None
        if self._commitments.get(v) != keys.commitment:
            raise _Abort(
                AbortReason.INCONSISTENT_SETS,
                f"client {v}'s signed commitment is not the one in the commitment list",
            )

    def _verify_consistency_signatures(
        self, survivors: tuple[int, ...], signatures: Mapping[int, bytes]
    ) -> None:
        assert self._registry is not None
        # Only signers from this client's closed neighbourhood count. Counting t signers from
        # anywhere lets a server on a sparse graph show different U3 views to different groups
        # of >= t clients each and combine the shares they reveal into one client's input
        # (tests/protocol/test_adversarial.py, multi-view attack). Each client signs one view,
        # so with t > 2(k + 1)/3 no neighbourhood can vouch for two views of one client.
        vouching = set(survivors) & (self._neighbours | {self.index})
        signers: set[bytes] = set()  # distinct identities: one key listed twice counts once
        for signer, signature in signatures.items():
            if len(signers) >= self.config.threshold:
                break  # enough: checking the rest costs time and decides nothing
            if signer not in vouching:
                continue
            identity = self._registry.identity_key(signer)
            if identity is None or identity in signers:
                continue
            try:
                verify_signature(identity, signature, self._survivors_message(survivors, signer))
            except CryptoError:
                continue
            signers.add(identity)
        valid = len(signers)
        if valid < self.config.threshold:
            raise _Abort(
                AbortReason.TOO_FEW_SIGNATURES,
                f"{valid} valid signatures over U3 from registered survivors among this "
                f"client and its neighbours; need {self.config.threshold}",
            )

    # -- helpers ------------------------------------------------------------------------------

    def _set_graph(self, graph: NeighbourGraph) -> None:
        self._graph = graph
        self._neighbours = frozenset(graph.neighbours(self.index))

    def _survivors_message(self, survivors: tuple[int, ...], signer: int) -> bytes:
        """The consistency message signed by ``signer``: bound to this session's derived seed
        and to the signer's own fresh round-0 keys (which this client holds: signers that
        count are in its closed neighbourhood and in U3, so in U1)."""
        assert self.graph_seed is not None
        keys = self._peer_keys[signer]
        return signed_survivors_message(
            self._sid,
            self.graph_seed,
            self._context_digest,
            survivors,
            keys.enc_public,
            keys.mask_public,
        )

    def _require(self, state: ClientState, action: str) -> None:
        if self.state is not state:
            raise LocalProtocolError(f"cannot {action} in state {self.state.value}")

    def _enter_abort(self, reason: AbortReason, detail: str) -> Abort:
        self.state = ClientState.ABORTED
        self.abort_reason = reason
        self.abort_detail = detail
        self._drop_secrets()
        return Abort(self._sid, self.index, reason.value, detail)

    def _drop_secrets(self) -> None:
        """Forget every secret of the round; called on entering DONE or ABORTED.

        A terminal session answers no message, so its secrets are useless; dropping them means
        nothing that later gets hold of the session object (a crash dump, a saved session, a bug)
        can reveal them.
        """
        self._enc_keys = None
        self._mask_keys = None
        self._seed = b""
        self._own_shares = None
        self._ciphertexts = {}
        self._share_keys = {}


def _as_ring_vector(data: npt.ArrayLike, config: RoundConfig) -> npt.NDArray[np.unsignedinteger]:
    """Validate the client's input and return it as ring words (a private copy)."""
    arr = np.asarray(data)
    if arr.ndim != 1 or arr.shape[0] != config.dim:
        raise ConfigError(
            f"input must be a 1-D vector of length {config.dim}, got shape {arr.shape}"
        )
    if arr.dtype.kind not in "iu":
        raise ConfigError(f"input must hold integers (encode floats first), got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or int(arr.max()) > ring_mask(config.bits)):
        raise ConfigError(f"input values must lie in 0..2^{config.bits}-1")
    return np.array(arr, dtype=word_dtype(config.bits), copy=True)
