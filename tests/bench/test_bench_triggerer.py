"""The triggerer benchmark's completion schedule and the figures it picks for its targets.

The benchmark itself runs against the benchmark platform (`python -m bench.triggerer`,
part of `make bench`); these check what its verdicts are built from. The scripts run
from the repository root (`python -m bench.<name>`): so is `bench` imported here.
"""

from __future__ import annotations

import itertools
import statistics
import sys
from typing import Any

import pytest

from localplatform import paths

if str(paths.REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(paths.REPO_ROOT))

from bench import goals, triggerer

pytestmark = pytest.mark.bench


def test_completions_at_once_have_no_offsets() -> None:
    assert triggerer.completion_offsets(5, None) == [0.0] * 5


def test_paced_completions_are_a_seeded_poisson_stream_at_the_rate() -> None:
    offsets = triggerer.completion_offsets(1000, 20.0)
    assert offsets == triggerer.completion_offsets(1000, 20.0), "not the same every run"
    assert offsets[0] == 0.0
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    assert min(gaps) >= 0.0
    # 999 exponential gaps of mean 1/20 s: the mean is within 10 % (about 3 standard errors).
    assert statistics.mean(gaps) == pytest.approx(1 / 20.0, rel=0.1)
    # Not evenly spaced: a Poisson stream has gaps well below and well above the mean.
    assert min(gaps) < 0.2 / 20.0 < 3 / 20.0 < max(gaps)


def _figure(mode: str, rate: float | None, p95: float, waits: int = 1000) -> dict[str, Any]:
    return {
        "mode": mode,
        "waits": waits,
        "completions_per_second": rate,
        "resumed": waits,
        "resumed_per_second": 50.0,
        "api_requests_per_second": 1.0,
        "api_requests_per_wait": 0.1,
        "open_watches": 2,
        "resume_delay_seconds": {"median": p95 / 2, "p95": p95, "max": p95 + 1},
    }


def test_the_burst_and_the_paced_run_are_judged_apart() -> None:
    body = {
        "sizes": [
            _figure("watch", None, 9.5, waits=500),
            _figure("watch", None, 10.0),
            _figure("watch", 20.0, 0.8),
        ]
    }
    assert [f["waits"] for f in triggerer.figures_of(body, "watch")] == [500, 1000]
    targets = triggerer.targets_for(body)
    assert targets["watch, 1,000 waits: resume p95 < 1 s"]["met"] is False
    paced = targets["watch, 1,000 waits completing at 20/s: resume p95 < 1 s"]
    assert paced == {"value": "p95 0.80 s at 1,000 waits", "met": True}
    assert goals._waits(body, "watch")["resume_delay_seconds"]["p95"] == 10.0  # type: ignore[index]
    assert goals._waits(body, "watch", paced=True)["completions_per_second"] == 20.0  # type: ignore[index]


def test_results_written_before_the_paced_run_read_as_bursts() -> None:
    old = _figure("watch", None, 9.8)
    del old["completions_per_second"]
    assert triggerer.figures_of({"sizes": [old]}, "watch") == [old]
    assert triggerer.figures_of({"sizes": [old]}, "watch", paced=True) == []


def test_the_api_load_target_does_not_need_a_paced_run() -> None:
    body = {"sizes": [_figure("poll", None, 15.0), _figure("watch", None, 10.0)]}
    body["sizes"][0]["api_requests_per_second"] = 100.0
    body["sizes"][0]["api_requests_per_wait"] = 6.0
    body["sizes"][0]["api_get_per_second"] = 100.0
    targets = triggerer.targets_for(body)
    assert targets["watch: API load no higher than polling's"]["met"] is True
    assert not any("completing at 20/s" in name for name in targets)
