from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClientFrame(_message.Message):
    __slots__ = ("hello", "advertise_keys", "encrypted_shares", "masked_input", "consistency_signature", "unmask_response", "abort", "reveal_nonce")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    ADVERTISE_KEYS_FIELD_NUMBER: _ClassVar[int]
    ENCRYPTED_SHARES_FIELD_NUMBER: _ClassVar[int]
    MASKED_INPUT_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    UNMASK_RESPONSE_FIELD_NUMBER: _ClassVar[int]
    ABORT_FIELD_NUMBER: _ClassVar[int]
    REVEAL_NONCE_FIELD_NUMBER: _ClassVar[int]
    hello: Hello
    advertise_keys: AdvertiseKeys
    encrypted_shares: EncryptedShares
    masked_input: MaskedInputChunk
    consistency_signature: ConsistencySignature
    unmask_response: UnmaskResponse
    abort: Abort
    reveal_nonce: RevealNonce
    def __init__(self, hello: _Optional[_Union[Hello, _Mapping]] = ..., advertise_keys: _Optional[_Union[AdvertiseKeys, _Mapping]] = ..., encrypted_shares: _Optional[_Union[EncryptedShares, _Mapping]] = ..., masked_input: _Optional[_Union[MaskedInputChunk, _Mapping]] = ..., consistency_signature: _Optional[_Union[ConsistencySignature, _Mapping]] = ..., unmask_response: _Optional[_Union[UnmaskResponse, _Mapping]] = ..., abort: _Optional[_Union[Abort, _Mapping]] = ..., reveal_nonce: _Optional[_Union[RevealNonce, _Mapping]] = ...) -> None: ...

class ServerFrame(_message.Message):
    __slots__ = ("welcome", "keys_broadcast", "shares_delivery", "consistency_request", "unmask_request", "round_complete", "abort", "reject", "commitments_broadcast", "challenge", "task_chunk")
    WELCOME_FIELD_NUMBER: _ClassVar[int]
    KEYS_BROADCAST_FIELD_NUMBER: _ClassVar[int]
    SHARES_DELIVERY_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_REQUEST_FIELD_NUMBER: _ClassVar[int]
    UNMASK_REQUEST_FIELD_NUMBER: _ClassVar[int]
    ROUND_COMPLETE_FIELD_NUMBER: _ClassVar[int]
    ABORT_FIELD_NUMBER: _ClassVar[int]
    REJECT_FIELD_NUMBER: _ClassVar[int]
    COMMITMENTS_BROADCAST_FIELD_NUMBER: _ClassVar[int]
    CHALLENGE_FIELD_NUMBER: _ClassVar[int]
    TASK_CHUNK_FIELD_NUMBER: _ClassVar[int]
    welcome: Welcome
    keys_broadcast: KeysBroadcast
    shares_delivery: SharesDelivery
    consistency_request: ConsistencyRequest
    unmask_request: UnmaskRequest
    round_complete: RoundComplete
    abort: Abort
    reject: Reject
    commitments_broadcast: CommitmentsBroadcast
    challenge: Challenge
    task_chunk: TaskChunk
    def __init__(self, welcome: _Optional[_Union[Welcome, _Mapping]] = ..., keys_broadcast: _Optional[_Union[KeysBroadcast, _Mapping]] = ..., shares_delivery: _Optional[_Union[SharesDelivery, _Mapping]] = ..., consistency_request: _Optional[_Union[ConsistencyRequest, _Mapping]] = ..., unmask_request: _Optional[_Union[UnmaskRequest, _Mapping]] = ..., round_complete: _Optional[_Union[RoundComplete, _Mapping]] = ..., abort: _Optional[_Union[Abort, _Mapping]] = ..., reject: _Optional[_Union[Reject, _Mapping]] = ..., commitments_broadcast: _Optional[_Union[CommitmentsBroadcast, _Mapping]] = ..., challenge: _Optional[_Union[Challenge, _Mapping]] = ..., task_chunk: _Optional[_Union[TaskChunk, _Mapping]] = ...) -> None: ...

class Challenge(_message.Message):
    __slots__ = ("nonce",)
    NONCE_FIELD_NUMBER: _ClassVar[int]
    nonce: bytes
    def __init__(self, nonce: _Optional[bytes] = ...) -> None: ...

class Hello(_message.Message):
    __slots__ = ("protocol_version", "name", "dim", "signature")
    PROTOCOL_VERSION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    protocol_version: int
    name: str
    dim: int
    signature: bytes
    def __init__(self, protocol_version: _Optional[int] = ..., name: _Optional[str] = ..., dim: _Optional[int] = ..., signature: _Optional[bytes] = ...) -> None: ...

class Welcome(_message.Message):
    __slots__ = ("index", "config", "round", "phase_timeout", "max_message_bytes", "chunk_words", "roster", "spec", "task_bytes")
    class RosterEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: str
        def __init__(self, key: _Optional[int] = ..., value: _Optional[str] = ...) -> None: ...
    INDEX_FIELD_NUMBER: _ClassVar[int]
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    ROUND_FIELD_NUMBER: _ClassVar[int]
    PHASE_TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    MAX_MESSAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHUNK_WORDS_FIELD_NUMBER: _ClassVar[int]
    ROSTER_FIELD_NUMBER: _ClassVar[int]
    SPEC_FIELD_NUMBER: _ClassVar[int]
    TASK_BYTES_FIELD_NUMBER: _ClassVar[int]
    index: int
    config: bytes
    round: int
    phase_timeout: float
    max_message_bytes: int
    chunk_words: int
    roster: _containers.ScalarMap[int, str]
    spec: bytes
    task_bytes: int
    def __init__(self, index: _Optional[int] = ..., config: _Optional[bytes] = ..., round: _Optional[int] = ..., phase_timeout: _Optional[float] = ..., max_message_bytes: _Optional[int] = ..., chunk_words: _Optional[int] = ..., roster: _Optional[_Mapping[int, str]] = ..., spec: _Optional[bytes] = ..., task_bytes: _Optional[int] = ...) -> None: ...

class TaskChunk(_message.Message):
    __slots__ = ("session_id", "offset", "data")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    offset: int
    data: bytes
    def __init__(self, session_id: _Optional[bytes] = ..., offset: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class Reject(_message.Message):
    __slots__ = ("reason", "detail")
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    reason: str
    detail: str
    def __init__(self, reason: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class PublicKeys(_message.Message):
    __slots__ = ("enc_public", "mask_public", "signature", "commitment")
    ENC_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    MASK_PUBLIC_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    COMMITMENT_FIELD_NUMBER: _ClassVar[int]
    enc_public: bytes
    mask_public: bytes
    signature: bytes
    commitment: bytes
    def __init__(self, enc_public: _Optional[bytes] = ..., mask_public: _Optional[bytes] = ..., signature: _Optional[bytes] = ..., commitment: _Optional[bytes] = ...) -> None: ...

class AdvertiseKeys(_message.Message):
    __slots__ = ("session_id", "sender", "keys")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    sender: int
    keys: PublicKeys
    def __init__(self, session_id: _Optional[bytes] = ..., sender: _Optional[int] = ..., keys: _Optional[_Union[PublicKeys, _Mapping]] = ...) -> None: ...

class CommitmentsBroadcast(_message.Message):
    __slots__ = ("session_id", "commitments")
    class CommitmentsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: bytes
        def __init__(self, key: _Optional[int] = ..., value: _Optional[bytes] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    COMMITMENTS_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    commitments: _containers.ScalarMap[int, bytes]
    def __init__(self, session_id: _Optional[bytes] = ..., commitments: _Optional[_Mapping[int, bytes]] = ...) -> None: ...

class RevealNonce(_message.Message):
    __slots__ = ("session_id", "sender", "nonce")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    NONCE_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    sender: int
    nonce: bytes
    def __init__(self, session_id: _Optional[bytes] = ..., sender: _Optional[int] = ..., nonce: _Optional[bytes] = ...) -> None: ...

class KeysBroadcast(_message.Message):
    __slots__ = ("session_id", "keys", "nonces")
    class KeysEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: PublicKeys
        def __init__(self, key: _Optional[int] = ..., value: _Optional[_Union[PublicKeys, _Mapping]] = ...) -> None: ...
    class NoncesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: bytes
        def __init__(self, key: _Optional[int] = ..., value: _Optional[bytes] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    KEYS_FIELD_NUMBER: _ClassVar[int]
    NONCES_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    keys: _containers.MessageMap[int, PublicKeys]
    nonces: _containers.ScalarMap[int, bytes]
    def __init__(self, session_id: _Optional[bytes] = ..., keys: _Optional[_Mapping[int, PublicKeys]] = ..., nonces: _Optional[_Mapping[int, bytes]] = ...) -> None: ...

class EncryptedShares(_message.Message):
    __slots__ = ("session_id", "sender", "ciphertexts")
    class CiphertextsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: bytes
        def __init__(self, key: _Optional[int] = ..., value: _Optional[bytes] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXTS_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    sender: int
    ciphertexts: _containers.ScalarMap[int, bytes]
    def __init__(self, session_id: _Optional[bytes] = ..., sender: _Optional[int] = ..., ciphertexts: _Optional[_Mapping[int, bytes]] = ...) -> None: ...

class SharesDelivery(_message.Message):
    __slots__ = ("session_id", "ciphertexts")
    class CiphertextsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: bytes
        def __init__(self, key: _Optional[int] = ..., value: _Optional[bytes] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    CIPHERTEXTS_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    ciphertexts: _containers.ScalarMap[int, bytes]
    def __init__(self, session_id: _Optional[bytes] = ..., ciphertexts: _Optional[_Mapping[int, bytes]] = ...) -> None: ...

class MaskedInputChunk(_message.Message):
    __slots__ = ("session_id", "sender", "dim", "word_bytes", "offset", "words")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    WORD_BYTES_FIELD_NUMBER: _ClassVar[int]
    OFFSET_FIELD_NUMBER: _ClassVar[int]
    WORDS_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    sender: int
    dim: int
    word_bytes: int
    offset: int
    words: bytes
    def __init__(self, session_id: _Optional[bytes] = ..., sender: _Optional[int] = ..., dim: _Optional[int] = ..., word_bytes: _Optional[int] = ..., offset: _Optional[int] = ..., words: _Optional[bytes] = ...) -> None: ...

class ConsistencyRequest(_message.Message):
    __slots__ = ("session_id", "survivors")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SURVIVORS_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    survivors: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, session_id: _Optional[bytes] = ..., survivors: _Optional[_Iterable[int]] = ...) -> None: ...

class ConsistencySignature(_message.Message):
    __slots__ = ("session_id", "sender", "signature")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    sender: int
    signature: bytes
    def __init__(self, session_id: _Optional[bytes] = ..., sender: _Optional[int] = ..., signature: _Optional[bytes] = ...) -> None: ...

class UnmaskRequest(_message.Message):
    __slots__ = ("session_id", "survivors", "signatures")
    class SignaturesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: bytes
        def __init__(self, key: _Optional[int] = ..., value: _Optional[bytes] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SURVIVORS_FIELD_NUMBER: _ClassVar[int]
    SIGNATURES_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    survivors: _containers.RepeatedScalarFieldContainer[int]
    signatures: _containers.ScalarMap[int, bytes]
    def __init__(self, session_id: _Optional[bytes] = ..., survivors: _Optional[_Iterable[int]] = ..., signatures: _Optional[_Mapping[int, bytes]] = ...) -> None: ...

class UnmaskResponse(_message.Message):
    __slots__ = ("session_id", "sender", "self_mask_shares", "key_shares")
    class SelfMaskSharesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: bytes
        def __init__(self, key: _Optional[int] = ..., value: _Optional[bytes] = ...) -> None: ...
    class KeySharesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: bytes
        def __init__(self, key: _Optional[int] = ..., value: _Optional[bytes] = ...) -> None: ...
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    SELF_MASK_SHARES_FIELD_NUMBER: _ClassVar[int]
    KEY_SHARES_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    sender: int
    self_mask_shares: _containers.ScalarMap[int, bytes]
    key_shares: _containers.ScalarMap[int, bytes]
    def __init__(self, session_id: _Optional[bytes] = ..., sender: _Optional[int] = ..., self_mask_shares: _Optional[_Mapping[int, bytes]] = ..., key_shares: _Optional[_Mapping[int, bytes]] = ...) -> None: ...

class Abort(_message.Message):
    __slots__ = ("session_id", "sender", "reason", "detail")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    SENDER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    sender: int
    reason: str
    detail: str
    def __init__(self, session_id: _Optional[bytes] = ..., sender: _Optional[int] = ..., reason: _Optional[str] = ..., detail: _Optional[str] = ...) -> None: ...

class RoundComplete(_message.Message):
    __slots__ = ("session_id", "included")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    INCLUDED_FIELD_NUMBER: _ClassVar[int]
    session_id: bytes
    included: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, session_id: _Optional[bytes] = ..., included: _Optional[_Iterable[int]] = ...) -> None: ...
