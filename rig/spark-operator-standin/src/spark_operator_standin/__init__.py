"""A stand-in for the kubeflow spark-operator, for clusters (and this machine) without it.

NOT part of the chart's default install. It speaks the operator's v2.5 contract: its
state machine (`states`: every state the operator writes, restartPolicy with retries and
intervals, timeToLiveSeconds, suspend, a spec change invalidating the run), the status
fields it keeps (submissionID per attempt, attempt counters, driverInfo.podName,
sparkApplicationId, executorState, terminationTime), and in k8s mode the spark-submit
arguments it builds (`submit.operator_arguments`), with the application's own pod
templates as `podTemplateFile`. Clusters use the real operator from its own chart.

Modes: `local` runs spark-submit on this machine (make demo, e2e): the process is the
driver; `k8s` submits with `--master k8s://...` so Spark's own Kubernetes backend
creates driver and executor pods, and the state is read from those pods as the operator
reads them (`driver_pod`). What still differs from the operator is listed in
charts/orders-etl/README.md ("Running with the kubeflow spark-operator").
"""
