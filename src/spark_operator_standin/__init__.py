"""A stand-in for the kubeflow spark-operator, for clusters (and this machine) without it.

NOT part of the chart's default install. It speaks the operator's contract closely
enough that the DAG's operator and trigger cannot tell the difference: for each
SparkApplication (sparkoperator.k8s.io/v1beta2) it runs `spark-submit` and writes
`.status` the way spark-operator v2 does (applicationState.state SUBMITTED, RUNNING,
COMPLETED, FAILED or SUBMISSION_FAILED with errorMessage; sparkApplicationId,
driverInfo, executorState, submissionAttempts, lastSubmissionAttemptTime,
terminationTime). Clusters use the real operator from its own chart.

Modes: `local` runs spark-submit on this machine (make demo, e2e) and its exit code is
the outcome; `k8s` submits with `--master k8s://...` so Spark's own Kubernetes backend
creates driver and executor pods, and the state is read from those pods as the operator
reads it (`driver_pod`): the driver's phase, its container's exit code and reason,
Spark's application id label, each executor's phase. In k8s mode a restarted stand-in
adopts the applications it finds SUBMITTED or RUNNING by following their driver pods,
and deleting a SparkApplication deletes its driver pod.
"""
