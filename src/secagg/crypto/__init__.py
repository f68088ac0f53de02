"""Internal cryptographic primitives (not part of the public API; see PROTOCOL.md)."""
