"""The backlog watcher's wiring and decision rule (the broker-backed behaviour is in
tests/integration/test_kafka_backlog.py)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.unit


def test_every_topic_watches_through_one_shared_event_trigger() -> None:
    """Airflow keeps one trigger per (classpath, kwargs) hash: identical kwargs on every
    topic's watcher mean one poll loop, and one event recorded on all three assets."""
    from airflow.triggers.base import BaseEventTrigger

    from orders_etl.config import parse_config
    from orders_etl.dag import build_dag
    from orders_etl.triggers.kafka_backlog import KafkaBacklogTrigger

    config = parse_config()
    condition = build_dag(config).timetable.asset_condition
    triggers = [w.trigger for a in condition.objects for w in a.watchers]
    assert len(triggers) == len(config.kafka.topics) == 3
    assert all(isinstance(t, KafkaBacklogTrigger) for t in triggers)
    assert issubclass(KafkaBacklogTrigger, BaseEventTrigger)
    hashes = {BaseEventTrigger.hash(*t.serialize()) for t in triggers}
    assert len(hashes) == 1
    classpath, kwargs = triggers[0].serialize()
    assert classpath == "orders_etl.triggers.kafka_backlog.KafkaBacklogTrigger"
    assert kwargs["topics"] == list(config.kafka.topics)
    assert kwargs["group_id"] == config.kafka.group_id
    assert kwargs["min_interval"] == config.watcher.min_interval_seconds
    # what the triggerer does with a row: the class rebuilt from its kwargs
    assert KafkaBacklogTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_the_dag_is_active_after_install_unless_configured_paused() -> None:
    from orders_etl.config import parse_config
    from orders_etl.dag import build_dag

    assert build_dag(parse_config()).is_paused_upon_creation is False
    paused = parse_config("dag:\n  is_paused_upon_creation: true\n")
    assert build_dag(paused).is_paused_upon_creation is True


def test_watcher_settings_are_validated() -> None:
    from orders_etl.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="poll_interval_seconds"):
        parse_config("watcher:\n  poll_interval_seconds: 0\n")
    with pytest.raises(ConfigError, match="watcher_connection_id"):
        parse_config("kafka:\n  watcher_connection_id: kafka_watcher\n")


def _trigger(trigger_id: int | None = 7) -> object:
    from orders_etl.triggers.kafka_backlog import KafkaBacklogTrigger

    trigger = KafkaBacklogTrigger(
        topics=["a", "b"],
        kafka_config_id="k",
        group_id="g",
        aws_conn_id=None,
        bucket="staging",
        prefix="cdc",
        name="orders_etl",
        min_interval=30,
        refire_after=600,
    )
    trigger.trigger_id = trigger_id
    return trigger


def test_decision_fires_for_unclaimed_offsets_once_until_claimed() -> None:
    from orders_etl.triggers.kafka_backlog import Backlog, KafkaBacklogTrigger, Marker

    t = _trigger()
    assert isinstance(t, KafkaBacklogTrigger)
    quiet = Backlog({"a": {0: (5, 5)}, "b": {0: (0, 0), 1: (3, 3)}})
    pending = Backlog({"a": {0: (5, 9)}, "b": {0: (0, 0), 1: (3, 3)}})
    assert t.should_fire(quiet, None, 1000) == "no unclaimed offsets"
    assert t.should_fire(pending, None, 1000) is None
    fired = Marker(pending.ends, 1000, 7)
    # more messages, no claim yet: the same batch, no second event
    more = Backlog({"a": {0: (5, 20)}, "b": {0: (0, 4), 1: (3, 3)}})
    assert t.should_fire(more, fired, 1100) == "the last event's batch is not claimed yet"
    # the run claimed up to 20 and 4; new offsets since: fire, but not within min_interval
    claimed = Backlog({"a": {0: (20, 22)}, "b": {0: (4, 4), 1: (3, 3)}})
    assert t.should_fire(claimed, fired, 1010) == "within min_interval of the last event"
    assert t.should_fire(claimed, fired, 1100) is None
    # one topic claimed by the event's run, the other not yet: still that run's batch
    midway = Backlog({"a": {0: (20, 22)}, "b": {0: (0, 4), 1: (3, 3)}}, {"a": "run2", "b": "run1"})
    assert t.should_fire(midway, fired, 1100) == "the last event's batch is not claimed yet"
    # claimed and nothing new: nothing to fire for
    assert t.should_fire(Backlog({"a": {0: (20, 20)}}), fired, 5000) == "no unclaimed offsets"
    # never claimed for longer than refire_after: the event's run never started
    assert t.should_fire(more, fired, 1700) is None
    # another trigger's marker (DAG paused and unpaused): its event may never have run
    assert _trigger(8).should_fire(more, fired, 1100) is None  # type: ignore[attr-defined]


def test_a_new_partition_counts_and_a_missing_one_is_not_claimed() -> None:
    from orders_etl.triggers.kafka_backlog import Backlog, Marker

    fired = Marker({"a": {0: 10}}, 0, 7)
    grown = Backlog({"a": {0: (10, 10), 1: (0, 4)}})
    assert grown.unclaimed == {"a": 4}
    assert grown.covers(fired.watermarks)
    assert not Backlog({"a": {1: (0, 4)}}).covers(fired.watermarks)
    assert Marker.from_json(fired.to_json()) == fired
