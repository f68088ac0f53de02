"""Process-parallel mask expansion (:mod:`secagg.parallel.pool`), shared by the simulator and
the network server's unmasking; above the core (it starts processes), below both users."""
