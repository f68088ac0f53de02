"""Fixtures shared across test packages."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[object]:
    """A two-node local Ray cluster (head + one worker raylet, one CPU each), started once.

    Skips when Ray (the 'ray' extra) is not installed.
    """
    from tests.ray_helpers import local_cluster

    with local_cluster(nodes=2) as cluster:
        yield cluster
