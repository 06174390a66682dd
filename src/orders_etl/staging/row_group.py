"""One partition's messages, buffered into the columns of a staged Parquet object.

The consume stage's CPU is this loop (bench/consume.py measures it against librdkafka
doing nothing), so it runs no Python code per message where it can help it:

- the messages' fields are taken a consume() batch at a time by mapping Message's own
  accessors (C calls, no bytecode per message);
- the Arrow arrays are assembled from buffers (offsets from numpy, the bytes joined once)
  instead of converting Python lists with pa.array. That also keeps pandas out of the
  process: pa.array and pa.scalar import it on first use (about a second of CPU per consume
  task, measured here), from_buffers does not;
- topic and partition are the same on every row: they are made once per row group.

The columns are orders_contract.staging.parquet_schema's.
"""

from __future__ import annotations

import operator
from itertools import repeat
from typing import Any

import numpy as np
import pyarrow as pa
from confluent_kafka import Message

from orders_contract.staging import StagingError, parquet_schema

#: Messages buffered before a row group is flushed to the Parquet file ...
ROW_GROUP_ROWS = 100_000
#: ... or bytes of keys and values, whichever comes first (Arrow's binary columns address
#: at most 2 GiB per array; this also bounds the consume task's memory).
ROW_GROUP_BYTES = 256 * 2**20

#: How staged objects are written (pq.ParquetWriter's options). Only the constant topic
#: column is dictionary-encoded and only the small columns carry statistics: keys and
#: values are unique byte strings, for which the writer would build a dictionary only to
#: drop it, and min/max bounds that nothing reads (the Spark job reads every object of a
#: manifest whole).
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "use_dictionary": ["topic"],
    "write_statistics": ["topic", "partition", "offset", "kafka_timestamp_ms"],
}


def _validity(items: list[Any], count: int) -> tuple[pa.Buffer | None, int]:
    """Arrow's validity bitmap of `items` (None is null) and its null count; no bitmap when
    nothing is null."""
    if None not in items:
        return None, 0
    present = np.fromiter(map(operator.is_not, items, repeat(None)), dtype=bool, count=count)
    bits = np.packbits(present, bitorder="little")
    return pa.py_buffer(bits), count - int(np.count_nonzero(present))


def binary_array(items: list[bytes | None]) -> pa.Array:
    """A pa.binary() array of `items` (None is null), built from two buffers: the lengths
    (None has none: operator.length_hint gives 0) and the bytes, joined once."""
    count = len(items)
    offsets = np.zeros(count + 1, dtype=np.int32)
    lengths = np.fromiter(map(operator.length_hint, items), dtype=np.int64, count=count)
    np.cumsum(lengths, out=offsets[1:])
    validity, nulls = _validity(items, count)
    data = b"".join(filter(None, items))
    return pa.Array.from_buffers(
        pa.binary(), count, [validity, pa.py_buffer(offsets), pa.py_buffer(data)], null_count=nulls
    )


def int64_array(items: list[int | None]) -> pa.Array:
    """A pa.int64() array of `items` (None is null)."""
    count = len(items)
    validity, nulls = _validity(items, count)
    values = np.fromiter(
        items if nulls == 0 else (0 if i is None else i for i in items),
        dtype=np.int64,
        count=count,
    )
    return pa.Array.from_buffers(
        pa.int64(), count, [validity, pa.py_buffer(values)], null_count=nulls
    )


def _constant_string(value: str, count: int) -> pa.Array:
    data = value.encode()
    offsets = np.arange(count + 1, dtype=np.int32) * len(data)
    return pa.Array.from_buffers(
        pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data * count)]
    )


def _constant_int32(value: int, count: int) -> pa.Array:
    return pa.Array.from_buffers(
        pa.int32(), count, [None, pa.py_buffer(np.full(count, value, dtype=np.int32))]
    )


class RowGroup:
    """The next row group of one partition's object, filled one consume() batch at a time
    with the messages below the range's end."""

    def __init__(self, topic: str, partition: int, end: int) -> None:
        self._topic = topic
        self._partition = partition
        self._end = end
        #: The staged objects' columns, in the order flush() builds them.
        self.schema = parquet_schema()
        self._clear()

    def _clear(self) -> None:
        self.rows = 0
        self.bytes = 0
        self._offsets: list[int | None] = []
        self._timestamps: list[int | None] = []
        self._keys: list[bytes | None] = []
        self._values: list[bytes | None] = []

    @property
    def full(self) -> bool:
        return self.rows >= ROW_GROUP_ROWS or self.bytes >= ROW_GROUP_BYTES

    def add(self, messages: list[Message]) -> int:
        """Keeps the messages below the range's end; returns how many it kept. A message
        carrying an error fails the stage."""
        if not messages:
            return 0
        if any(map(Message.error, messages)):
            error = next(m.error() for m in messages if m.error() is not None)
            raise StagingError(f"{self._topic}[{self._partition}]: {error}")
        offsets = list(map(Message.offset, messages))
        # Offsets rise within a partition: only the last can be past the end, unless an
        # offset is missing (None), which is dropped like one past the end.
        if offsets[-1] is None or offsets[-1] >= self._end or None in offsets:
            messages = [
                m for m, o in zip(messages, offsets, strict=True) if o is not None and o < self._end
            ]
            offsets = list(map(Message.offset, messages))
        self._offsets += offsets
        # Timestamp type 0: the broker gave none (null), whatever the number beside it.
        self._timestamps += [ts if kind else None for kind, ts in map(Message.timestamp, messages)]
        self._keys += map(Message.key, messages)
        self._values += map(Message.value, messages)
        self.rows += len(offsets)
        # A Message's len() is its value's (0 for none); keys are a few bytes each.
        self.bytes += sum(map(len, messages))
        return len(offsets)

    def flush(self) -> pa.Table:
        """The buffered rows as a table of `self.schema`; the group starts empty again."""
        table = pa.Table.from_arrays(
            [
                _constant_string(self._topic, self.rows),
                _constant_int32(self._partition, self.rows),
                int64_array(self._offsets),
                int64_array(self._timestamps),
                binary_array(self._keys),
                binary_array(self._values),
            ],
            schema=self.schema,
        )
        self._clear()
        return table
