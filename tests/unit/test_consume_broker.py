"""How consume treats a broker's answers: a broker that is up but not ready yet (the
group coordinator loading or moved after a restart, measured in tests/integration/
test_outages.py) is asked again within the budget; anything else, or the budget spent,
is one clear StagingError."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import KafkaError, KafkaException

from orders_contract.staging import StagingError, StagingLocation
from orders_etl.staging.stager import TopicStager

pytestmark = pytest.mark.unit


def stager(timeout: float) -> TopicStager:
    return TopicStager(
        lambda: None,  # type: ignore[arg-type,return-value]
        s3=None,
        location=StagingLocation(bucket="staging", prefix="p"),
        group_id="g",
        timeout=timeout,
    )


class Answers:
    """Raises the given Kafka errors in turn, then answers; records the timeouts asked."""

    def __init__(self, *codes: int) -> None:
        self.codes = list(codes)
        self.timeouts: list[float] = []

    def __call__(self, timeout: float) -> str:
        self.timeouts.append(timeout)
        if self.codes:
            raise KafkaException(KafkaError(self.codes.pop(0)))
        return "answer"


def test_a_coordinator_not_ready_yet_is_asked_again() -> None:
    answers = Answers(KafkaError.NOT_COORDINATOR, KafkaError.COORDINATOR_LOAD_IN_PROGRESS)
    assert stager(timeout=30)._ask_broker("the committed offsets", answers) == "answer"
    assert len(answers.timeouts) == 3
    assert answers.timeouts[0] > answers.timeouts[-1], "each try gets what is left"


def test_a_permanent_error_fails_at_once_and_clearly() -> None:
    answers = Answers(KafkaError.TOPIC_AUTHORIZATION_FAILED)
    started = time.monotonic()
    with pytest.raises(StagingError, match=r"Kafka is not reachable: the metadata .*AUTHORIZ"):
        stager(timeout=30)._ask_broker("the metadata", answers)
    assert time.monotonic() - started < 1
    assert len(answers.timeouts) == 1


def test_a_broker_that_stays_unready_fails_once_the_budget_is_spent() -> None:
    answers = Answers(*[KafkaError.NOT_COORDINATOR] * 100)
    started = time.monotonic()
    with pytest.raises(StagingError, match=r"within 2 s .*NOT_COORDINATOR"):
        stager(timeout=2)._ask_broker("the committed offsets", answers)
    assert 1 <= time.monotonic() - started < 4
