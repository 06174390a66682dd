"""One local platform for the whole reliability session (bringing it up is the slow part).

Starts from a wiped platform (it stops a running `make demo`) and stops it at the end,
asserting that no process it started is left. `published` collects every batch of CDC
events published during the session: the dashboard must always equal the independent
computation over all of them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from localplatform.demo import Demo


@pytest.fixture(scope="session")
def demo() -> Iterator[Demo]:
    platform = Demo()
    platform.down()
    platform.up()
    yield platform
    assert platform.down() == []


@pytest.fixture(scope="session")
def published() -> list[Path]:
    return []
