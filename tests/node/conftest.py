"""The real node (kubelet + containerd) beside the kwok nodes, for pytest -m node."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from localplatform.cluster import Cluster
from localplatform.node import Node


@pytest.fixture(scope="session")
def real_node(local_cluster: Cluster) -> Iterator[Node]:
    """The real node on the local control plane.

    Reuses a node started by `make node-up` (and leaves it running); otherwise starts one
    for the session and stops it afterwards (asserting that nothing is left), unless
    LOCALPLATFORM_KEEP=1.
    """
    node = Node(cluster=local_cluster)
    already_up = node.is_up()
    if not already_up:
        seconds = node.up()
        print(f"\nreal node up in {seconds:.1f} s")
    yield node
    if not already_up and os.environ.get("LOCALPLATFORM_KEEP") != "1":
        node.down()
        left = {k: v for k, v in node.leftovers().items() if v}
        assert not left, f"the real node left things behind: {left}"
