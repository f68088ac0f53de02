"""Long-term client identities on disk: Ed25519 key files and the registry of public keys that
malicious-mode rounds check signatures against (:mod:`secagg.identity.registry`)."""
