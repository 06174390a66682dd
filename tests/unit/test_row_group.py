"""The staged objects' row groups: arrays built from buffers hold exactly what pa.array
makes of the same values, and a row group keeps what the range owns.

Messages are confluent-kafka's own Message objects (its constructor for tests); the real
consume path, against the real broker and S3 server, is tests/integration/test_consume.py.
"""

from __future__ import annotations

import random
import subprocess
import sys

import pyarrow as pa
import pytest
from confluent_kafka import KafkaError, Message

from orders_contract.staging import StagingError, parquet_schema
from orders_etl.staging import row_group
from orders_etl.staging.row_group import RowGroup, binary_array, int64_array

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "items",
    [
        [],
        [b"a", b"", b"\x00\xff" * 50],
        [None, b"x", None, b"", b"yz"],
        [None] * 9,
    ],
)
def test_binary_array_equals_pa_array(items: list[bytes | None]) -> None:
    built = binary_array(items)
    built.validate(full=True)
    assert built.equals(pa.array(items, pa.binary()))
    assert built.null_count == items.count(None)


def test_binary_and_int64_arrays_on_random_values() -> None:
    rng = random.Random(7)  # noqa: S311 (test data, not a secret)
    blobs = [
        None if rng.random() < 0.1 else rng.randbytes(rng.randrange(0, 200)) for _ in range(5000)
    ]
    ints = [None if rng.random() < 0.05 else rng.randrange(-(2**62), 2**62) for _ in range(5000)]
    assert binary_array(blobs).equals(pa.array(blobs, pa.binary()))
    assert int64_array(ints).equals(pa.array(ints, pa.int64()))
    whole = [i for i in ints if i is not None]
    assert int64_array(whole).equals(pa.array(whole, pa.int64()))  # type: ignore[arg-type]


def message(offset: int, value: bytes | None = b"{}", ts: tuple[int, int] = (1, 1000)) -> Message:
    return Message(
        topic="orders", partition=2, offset=offset, key=b'{"id": 1}', value=value, timestamp=ts
    )


def test_a_row_group_keeps_the_range_and_every_column() -> None:
    group = RowGroup("orders", 2, end=13)
    kept = group.add([message(10, b"a", (1, 5)), message(11, None, (0, -1))])
    kept += group.add([message(12, b"c"), message(13), message(14)])  # 13, 14: not the range's
    assert kept == group.rows == 3
    table = group.flush()
    table.validate(full=True)
    assert table.schema == parquet_schema()
    assert table.to_pylist() == [
        {
            "topic": "orders",
            "partition": 2,
            "offset": 10,
            "kafka_timestamp_ms": 5,
            "key": b'{"id": 1}',
            "value": b"a",
        },
        {
            "topic": "orders",
            "partition": 2,
            "offset": 11,
            "kafka_timestamp_ms": None,  # timestamp type 0: not available
            "key": b'{"id": 1}',
            "value": None,  # a tombstone
        },
        {
            "topic": "orders",
            "partition": 2,
            "offset": 12,
            "kafka_timestamp_ms": 1000,
            "key": b'{"id": 1}',
            "value": b"c",
        },
    ]
    assert group.rows == 0
    assert group.flush().num_rows == 0


def test_a_message_with_an_error_fails_the_stage() -> None:
    group = RowGroup("orders", 2, end=100)
    broken = Message(topic="orders", partition=2, error=KafkaError(KafkaError._MSG_TIMED_OUT))
    with pytest.raises(StagingError, match=r"orders\[2\]"):
        group.add([message(1), broken])


def test_a_row_group_is_full_by_rows_or_by_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(row_group, "ROW_GROUP_BYTES", 1000)
    group = RowGroup("orders", 2, end=10**6)
    group.add([message(i, b"v" * 100) for i in range(9)])
    assert not group.full
    group.add([message(9, b"v" * 100)])
    assert group.full  # 10 x (9 key + 100 value) bytes


def test_staging_rows_does_not_import_pandas() -> None:
    """pa.array and pa.scalar import pandas on first use (about a second of CPU in every
    consume task); the row group's arrays are built without it."""
    code = (
        "import sys\n"
        "from confluent_kafka import Message\n"
        "from orders_etl.staging.row_group import RowGroup\n"
        "g = RowGroup('t', 0, 10)\n"
        "g.add([Message(topic='t', partition=0, offset=1, value=None, timestamp=(1, 2))])\n"
        "g.flush()\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert out.stdout.strip() == "False"
