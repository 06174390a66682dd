"""The spark-operator's API as the project addresses it: the Airflow operator and trigger,
the CRD generator and the local control plane.

The kubeflow spark-operator's SparkApplication is `sparkoperator.k8s.io/v1beta2`,
resource `sparkapplications`. (The stand-in controller, a separate distribution that
models the upstream operator, keeps the upstream's own constants and imports nothing of
the product.)
"""

from __future__ import annotations

GROUP = "sparkoperator.k8s.io"
VERSION = "v1beta2"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "SparkApplication"
PLURAL = "sparkapplications"
#: The CRDs the operator's chart installs (SparkApplication, ScheduledSparkApplication,
#: SparkConnect), by name.
CRD_NAMES = (
    f"sparkapplications.{GROUP}",
    f"scheduledsparkapplications.{GROUP}",
    f"sparkconnects.{GROUP}",
)
