"""Batch ids: one per (dag id, run id), the same for every try and clear of a run."""

from __future__ import annotations

import pytest

from orders_contract.staging import StagingLocation, batch_id_for_run

pytestmark = pytest.mark.unit


def test_the_same_run_always_gets_the_same_id() -> None:
    assert batch_id_for_run("orders_etl", "manual__1") == batch_id_for_run(
        "orders_etl", "manual__1"
    )


@pytest.mark.parametrize(
    ("one", "other"),
    [
        (("orders_etl", "a:b"), ("orders_etl", "a_b")),  # the same once cleaned
        (("orders_etl", "x"), ("other_dag", "x")),  # another DAG's run of the same id
        (("a.b", "c"), ("a", "b.c")),  # the separator moves
        (("orders_etl", "r" * 300 + "1"), ("orders_etl", "r" * 300 + "2")),  # cut off
    ],
)
def test_distinct_runs_never_share_a_batch(one: tuple[str, str], other: tuple[str, str]) -> None:
    assert batch_id_for_run(*one) != batch_id_for_run(*other)


@pytest.mark.parametrize(
    "run_id",
    [
        "manual__2026-11-24T10:00:00.123456+00:00",
        "asset_triggered__2026-11-25T00:00:00+00:00",
        "::::",
        "ünïcødé run",
        "x" * 500,
    ],
)
def test_every_run_id_gives_a_path_safe_id(run_id: str) -> None:
    batch_id = batch_id_for_run("orders_etl", run_id)
    assert len(batch_id) <= 128
    StagingLocation("staging").batch_prefix(batch_id)  # raises on an unsafe id


def test_an_empty_dag_or_run_id_is_refused() -> None:
    with pytest.raises(ValueError, match="needs both"):
        batch_id_for_run("", "r")
