"""The ``secagg`` command line."""

import os

# gRPC's C core prints its own log lines (TLS handshake failures, ...) straight to stderr; the
# commands say what went wrong in one line of their own. GRPC_VERBOSITY=info brings them back.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")
