{{/*
Cross-field checks that the schema cannot express. Each failure says what to set.
Rendered (to nothing) on every install/upgrade/template, so bad input fails early.
Usage: this file is rendered by helm itself; it includes "orders-etl.validate".
*/}}
{{- define "orders-etl.validate" -}}
{{- $executors := include "orders-etl.executors" . | fromJsonArray -}}
{{- if not $executors -}}
{{- fail "airflow.executor is empty: set it to e.g. \"CeleryExecutor,KubernetesExecutor\"." -}}
{{- end -}}
{{- if not .Values.database.existingSecret -}}
{{- fail "database.existingSecret is required: create a Secret holding the metadata database URL (key `database.connectionKey`, default \"connection\": postgresql+psycopg2://user:pass@host:5432/airflow) and set database.existingSecret to its name." -}}
{{- end -}}
{{- if and (not .Values.secrets.existingSecret) (not .Values.secrets.generate.enabled) -}}
{{- fail "secrets.generate.enabled is false and secrets.existingSecret is empty: set secrets.existingSecret to a Secret with keys fernet-key, api-secret-key, jwt-secret (and redis-password with redis.enabled), or enable secrets.generate." -}}
{{- end -}}
{{- if and (include "orders-etl.hasCelery" .) (not .Values.redis.enabled) (not .Values.broker.existingSecret) -}}
{{- fail "CeleryExecutor needs a broker: set redis.enabled=true (in-chart Redis) or broker.existingSecret to a Secret holding the broker URL (key broker.urlKey)." -}}
{{- end -}}
{{- if and .Values.scheduler.ha (lt (int .Values.scheduler.replicas) 2) -}}
{{- fail (printf "scheduler.ha is true but scheduler.replicas is %v: an HA scheduler needs scheduler.replicas >= 2; set scheduler.ha=false to run a single scheduler on purpose." .Values.scheduler.replicas) -}}
{{- end -}}
{{- if and .Values.workers.hpa.enabled .Values.workers.keda.enabled -}}
{{- fail "workers.hpa.enabled and workers.keda.enabled are exclusive: enable one of them." -}}
{{- end -}}
{{- if and (eq .Values.auth.manager "simple") (not .Values.auth.simple.passwordsSecret) -}}
{{- fail "auth.manager=simple needs auth.simple.passwordsSecret: a Secret whose key auth.simple.passwordsKey (default passwords.json) holds {\"<username>\": \"<password>\"} for every user of auth.simple.users (or use auth.manager=fab)." -}}
{{- end -}}
{{- if and (eq .Values.auth.manager "simple") (not .Values.auth.simple.users) -}}
{{- fail "auth.manager=simple needs at least one user in auth.simple.users (username: role)." -}}
{{- end -}}
{{- if and .Values.apiServer.httpRoute.enabled (not .Values.apiServer.httpRoute.parentRefs) -}}
{{- fail "apiServer.httpRoute.enabled needs apiServer.httpRoute.parentRefs: the Gateway(s) to attach to, e.g. [{name: my-gateway, namespace: gateways}]." -}}
{{- end -}}
{{- range $name := list "scheduler" "triggerer" "apiServer" "workers" -}}
{{- $pdb := (index $.Values $name).pdb -}}
{{- if and $pdb.enabled (not (kindIs "invalid" $pdb.maxUnavailable)) (not (kindIs "invalid" $pdb.minAvailable)) -}}
{{- fail (printf "%s.pdb sets both maxUnavailable and minAvailable: set one of them to null." $name) -}}
{{- end -}}
{{- end -}}
{{- range .Values.airflow.connections -}}
{{- if and .secretRef .json -}}
{{- fail (printf "airflow.connections[%s] sets both secretRef and json: use one." .id) -}}
{{- end -}}
{{- if and (not .secretRef) (not .json) -}}
{{- fail (printf "airflow.connections[%s] needs secretRef {name, key} or json." .id) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.statsd.serviceMonitor.enabled (not .Values.statsd.enabled) -}}
{{- fail "statsd.serviceMonitor.enabled needs statsd.enabled=true." -}}
{{- end -}}
{{- end -}}
{{/*
The SparkApplications and the kubeflow spark-operator: the jobs namespace must be one the
operator watches (spark.operatorJobNamespaces, when declared).
Usage: this file includes it.
*/}}
{{- define "orders-etl.validateSpark" -}}
{{- $jobs := include "orders-etl.jobsNamespace" . -}}
{{- $watched := .Values.spark.operatorJobNamespaces -}}
{{- if and .Values.spark.enabled $watched (not (has $jobs $watched)) (not (has "" $watched)) -}}
{{- fail (printf "spark.jobsNamespace resolves to %q but the spark-operator watches %v (spark.operatorJobNamespaces): its SparkApplications would never run. Set spark.jobsNamespace to a watched namespace, or add %q to the operator chart's spark.jobNamespaces and to spark.operatorJobNamespaces." $jobs $watched $jobs) -}}
{{- end -}}
{{- if and .Values.spark.enabled .Values.spark.createJobsNamespace (not .Values.spark.jobsNamespace) -}}
{{- fail "spark.createJobsNamespace is true but spark.jobsNamespace is empty (the release namespace, which Helm does not create from a template): set spark.jobsNamespace, or createJobsNamespace=false." -}}
{{- end -}}
{{- end -}}
{{- include "orders-etl.validate" . -}}
{{- include "orders-etl.validateSpark" . -}}
