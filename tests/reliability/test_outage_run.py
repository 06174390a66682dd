"""The S3 server goes away in the middle of a run's consume and comes back (issue:
reliability): the consume attempts that hit the outage fail, Airflow retries them with
exponential backoff (the demo's pipeline overlay: 5 s first delay), the retries after
the server returns stage the claimed offsets exactly once, and the run's dashboard equals
the independent computation. The server is stopped and started by PID through the
platform's own Proc object (localplatform.services.s3).

The cheaper single-component versions (Kafka, S3, the API server, each against the
pipeline's code alone) are in tests/integration/test_outages.py.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from localplatform import cdc_events
from localplatform.demo import Demo
from orders_contract.staging import StagingLocation, batch_id_for_run
from orders_etl.config import parse_config

sys.path.insert(0, str(Path(__file__).parents[1] / "e2e"))
sys.path.insert(0, str(Path(__file__).parent))
from faults import assert_exactly_once, staged_topics, task_tries, wait_for
from oracle import daily_revenue

pytestmark = pytest.mark.reliability

#: How long the S3 server stays away once an attempt has failed on it.
OUTAGE_SECONDS = 10


@pytest.mark.timeout(1500)  # bring-up (if first), a whole run and the outage, 2 cores
def test_s3_down_during_consume_is_retried_until_it_returns(
    demo: Demo, published: list[Path], tmp_path: Path
) -> None:
    events = tmp_path / "events"
    cdc_events.write(cdc_events.generate(50, seed=304, start_id=30_000), events)
    counts = demo.publish(events)
    published.append(events)
    run_id = "rel__s3_outage"
    batch_id = batch_id_for_run("orders_etl", run_id)
    staging = parse_config().staging
    location = StagingLocation(staging.bucket, staging.prefix)
    s3_server = demo.services.s3
    s3 = s3_server.client()

    def claimed() -> bool:
        return any(
            "_manifest.json" not in names
            for names in staged_topics(s3, location, batch_id).values()
        )

    def failed_on_s3() -> bool:
        return any(
            state in ("up_for_retry", "failed") or tries > 1
            for _, state, tries in task_tries(demo, run_id, "consume")
        )

    demo.trigger(run_id)
    wait_for(claimed, 240, "consume to claim a topic's offsets", every=0.1)
    s3_server.stop()
    try:
        wait_for(failed_on_s3, 180, "a consume attempt to fail on the missing S3 server")
        time.sleep(OUTAGE_SECONDS)
    finally:
        s3_server.start()
    result = demo.wait_run(run_id, timeout=600, progress=False)
    assert result.state == "success", "the retries after S3 returned must complete the run"

    tries = task_tries(demo, run_id, "consume")
    assert all(state == "success" for _, state, _ in tries), tries
    assert any(t > 1 for _, _, t in tries), f"no consume attempt was retried: {tries}"
    assert_exactly_once(s3, location, batch_id, counts)
    assert demo.dashboard_rows() == daily_revenue(published)
