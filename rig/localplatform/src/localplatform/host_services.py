"""Servers of this machine as Services of a cluster: a Service without selector and an
EndpointSlice at an address of this machine on the cluster's network, where a forwarder
(localplatform.node_forward) relays each connection to the server on 127.0.0.1. The way
a cluster reaches servers outside it, so nothing in the chart's values names a machine
address."""

from __future__ import annotations

from typing import Any


def service_objects(
    namespace: str, services: dict[str, tuple[int, int]], address: str, managed_by: str
) -> list[dict[str, Any]]:
    """`namespace` (PodSecurity restricted) and, for each name -> (service port, host
    port), a Service without selector and its EndpointSlice at `address`:host port."""
    objects: list[dict[str, Any]] = [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": namespace,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        }
    ]
    for name, (port, host_port) in services.items():
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {"app.kubernetes.io/managed-by": managed_by},
                },
                "spec": {
                    "ports": [
                        {"name": "tcp", "port": port, "protocol": "TCP", "targetPort": host_port}
                    ]
                },
            }
        )
        objects.append(
            endpoint_slice(
                namespace, name, f"{name}-host", address, [("tcp", host_port, "TCP")],
                managed_by,
            )
        )  # fmt: skip
    return objects


def endpoint_slice(
    namespace: str,
    service: str,
    name: str,
    address: str,
    ports: list[tuple[str, int, str]],
    managed_by: str,
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": managed_by,
            },
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [address], "conditions": {"ready": True}}],
        "ports": [{"name": n, "port": port, "protocol": proto} for n, port, proto in ports],
    }
