"""A stand-in for the kubeflow spark-operator, for clusters (and this machine) without it.

NOT part of the chart's default install. It speaks the operator's contract closely
enough that the DAG's operator and trigger cannot tell the difference: for each
SparkApplication (sparkoperator.k8s.io/v1beta2) it runs `spark-submit` and writes
`.status` the way spark-operator v2 does (applicationState.state SUBMITTED, RUNNING,
COMPLETED, FAILED or SUBMISSION_FAILED with errorMessage; sparkApplicationId,
driverInfo, executorState, submissionAttempts, lastSubmissionAttemptTime,
terminationTime). Clusters use the real operator from its own chart.

Modes: `local` runs spark-submit on this machine (make demo, e2e); `k8s` submits with
`--master k8s://...` so Spark's own Kubernetes backend creates driver and executor pods.
"""
