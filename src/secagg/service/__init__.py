"""The operator-level service: :class:`Server` runs rounds with per-round tasks over gRPC."""

from secagg.service.server import NextTask, RoundOutcome, Server

__all__ = ["NextTask", "RoundOutcome", "Server"]
