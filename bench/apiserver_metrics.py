"""kube-apiserver's own request metrics (its /metrics endpoint), summed per verb."""

from __future__ import annotations

import re

from localplatform.cluster import Cluster

_LINE = re.compile(r"^(?P<name>\w+)\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def per_verb(text: str, metric: str, resource: str) -> dict[str, float]:
    """`metric`'s samples for `resource` (any group, scope, code) in a /metrics body,
    summed per verb."""
    counts: dict[str, float] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None or match["name"] != metric:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        if labels.get("resource") != resource:
            continue
        verb = labels.get("verb", "?")
        counts[verb] = counts.get(verb, 0.0) + float(match["value"])
    return counts


def scrape(cluster: Cluster) -> str:
    return str(cluster.kubectl("get", "--raw", "/metrics", timeout=60).stdout)


def request_counts(cluster: Cluster, resource: str) -> dict[str, float]:
    """Requests served so far for `resource` (apiserver_request_total). A WATCH is
    counted when its stream ends, so open streams are `open_watches`."""
    return per_verb(scrape(cluster), "apiserver_request_total", resource)


def open_watches(cluster: Cluster, resource: str) -> int:
    """WATCH streams open on `resource` now (apiserver_longrunning_requests)."""
    gauge = per_verb(scrape(cluster), "apiserver_longrunning_requests", resource)
    return int(gauge.get("WATCH", 0.0))
