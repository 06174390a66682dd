"""kube-apiserver's own request counter (apiserver_request_total on /metrics)."""

from __future__ import annotations

import re

from localplatform.cluster import Cluster

_LINE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\}\s+(?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def request_counts(cluster: Cluster, resource: str) -> dict[str, float]:
    """Requests served so far for `resource` (any group), summed per verb."""
    text = cluster.kubectl("get", "--raw", "/metrics", timeout=60).stdout
    counts: dict[str, float] = {}
    for line in text.splitlines():
        match = _LINE.match(line)
        if match is None:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        if labels.get("resource") != resource:
            continue
        verb = labels.get("verb", "?")
        counts[verb] = counts.get(verb, 0.0) + float(match["value"])
    return counts
