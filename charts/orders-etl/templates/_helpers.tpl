{{/*
Chart name.
Usage: {{ include "orders-etl.name" . }}
*/}}
{{- define "orders-etl.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name prefix of every object: fullnameOverride, else <release> when it already
contains the chart name, else <release>-<chart>. Truncated so suffixes still fit 63.
Usage: {{ include "orders-etl.fullname" . }}
*/}}
{{- define "orders-etl.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Name of one component's objects: <fullname>-<component>.
Usage: {{ include "orders-etl.componentName" (dict "ctx" $ "component" "scheduler") }}
*/}}
{{- define "orders-etl.componentName" -}}
{{- printf "%s-%s" (include "orders-etl.fullname" .ctx) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Selector labels of a component. Never change them: selectors are immutable.
Usage: {{ include "orders-etl.selectorLabels" (dict "ctx" $ "component" "scheduler") }}
*/}}
{{- define "orders-etl.selectorLabels" -}}
app.kubernetes.io/name: {{ include "orders-etl.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Standard app.kubernetes.io labels of every object (selector labels + version, part-of,
managed-by, helm.sh/chart, commonLabels).
Usage: {{ include "orders-etl.labels" (dict "ctx" $ "component" "scheduler") }}
*/}}
{{- define "orders-etl.labels" -}}
{{ include "orders-etl.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: orders-etl
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
ServiceAccount name of a component: <component>.serviceAccount.name, else <fullname>-<component>.
Usage: {{ include "orders-etl.serviceAccountName" (dict "ctx" $ "component" "scheduler" "values" .Values.scheduler) }}
*/}}
{{- define "orders-etl.serviceAccountName" -}}
{{- default (include "orders-etl.componentName" .) .values.serviceAccount.name -}}
{{- end -}}

{{/*
ServiceAccount of the Spark driver in the jobs namespace.
Usage: {{ include "orders-etl.sparkDriverServiceAccountName" . }}
*/}}
{{- define "orders-etl.sparkDriverServiceAccountName" -}}
{{- default (include "orders-etl.componentName" (dict "ctx" . "component" "spark-driver")) .Values.spark.driver.serviceAccountName -}}
{{- end -}}

{{/*
The Spark executors' ServiceAccount: no Role, no token.
Usage: {{ include "orders-etl.sparkExecutorServiceAccountName" . }}
*/}}
{{- define "orders-etl.sparkExecutorServiceAccountName" -}}
{{- default (include "orders-etl.componentName" (dict "ctx" . "component" "spark-executor")) .Values.spark.executor.serviceAccountName -}}
{{- end -}}

{{/*
Namespace of the SparkApplications: spark.jobsNamespace, else the release namespace.
Usage: {{ include "orders-etl.jobsNamespace" . }}
*/}}
{{- define "orders-etl.jobsNamespace" -}}
{{- default .Release.Namespace .Values.spark.jobsNamespace -}}
{{- end -}}

{{/*
Namespace of KubernetesExecutor task pods.
Usage: {{ include "orders-etl.kubernetesExecutorNamespace" . }}
*/}}
{{- define "orders-etl.kubernetesExecutorNamespace" -}}
{{- default .Release.Namespace .Values.kubernetesExecutor.namespace -}}
{{- end -}}

{{/*
An image reference. tag defaults to the given default (the chart appVersion for Airflow).
Usage: {{ include "orders-etl.image" (dict "image" .Values.images.airflow "default" .Chart.AppVersion) }}
*/}}
{{- define "orders-etl.image" -}}
{{- printf "%s:%s" .image.repository (toString (default .default .image.tag)) -}}
{{- end -}}

{{/*
The Airflow image reference.
Usage: {{ include "orders-etl.airflowImage" . }}
*/}}
{{- define "orders-etl.airflowImage" -}}
{{- include "orders-etl.image" (dict "image" .Values.images.airflow "default" .Chart.AppVersion) -}}
{{- end -}}

{{/*
The Spark image reference.
Usage: {{ include "orders-etl.sparkImage" . }}
*/}}
{{- define "orders-etl.sparkImage" -}}
{{- include "orders-etl.image" (dict "image" .Values.images.spark "default" "3.5.9") -}}
{{- end -}}

{{/*
Executor names, trimmed, as a list (JSON string; use fromJsonArray).
Usage: {{ include "orders-etl.executors" . | fromJsonArray }}
*/}}
{{- define "orders-etl.executors" -}}
{{- $out := list -}}
{{- range (splitList "," .Values.airflow.executor) -}}
{{- $e := trim . -}}
{{- if $e }}{{ $out = append $out $e }}{{ end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/*
"true" when one of the executors is the Celery executor (short name or class path).
Usage: {{ if include "orders-etl.hasCelery" . }}
*/}}
{{- define "orders-etl.hasCelery" -}}
{{- range (include "orders-etl.executors" . | fromJsonArray) -}}
{{- if or (eq . "CeleryExecutor") (hasSuffix ".CeleryExecutor" .) (eq . "CeleryKubernetesExecutor") }}true{{ end -}}
{{- end -}}
{{- end -}}

{{/*
"true" when one of the executors is the Kubernetes executor.
Usage: {{ if include "orders-etl.hasKubernetes" . }}
*/}}
{{- define "orders-etl.hasKubernetes" -}}
{{- range (include "orders-etl.executors" . | fromJsonArray) -}}
{{- if or (eq . "KubernetesExecutor") (hasSuffix ".KubernetesExecutor" .) }}true{{ end -}}
{{- end -}}
{{- end -}}

{{/*
Name of the Secret with fernet-key, api-secret-key, jwt-secret (+ redis-password, and
the FAB admin's password unless auth.admin.existingSecret is set):
secrets.existingSecret, else the Secret the secrets-init Job generates.
Usage: {{ include "orders-etl.secretName" . }}
*/}}
{{- define "orders-etl.secretName" -}}
{{- default (include "orders-etl.componentName" (dict "ctx" . "component" "generated")) .Values.secrets.existingSecret -}}
{{- end -}}

{{/*
Keys the secrets-init Job makes sure exist in the generated Secret (JSON list).
Usage: {{ include "orders-etl.generatedKeys" . | fromJsonArray }}
*/}}
{{- define "orders-etl.generatedKeys" -}}
{{- $keys := list "fernet-key" "api-secret-key" "jwt-secret" -}}
{{- if .Values.redis.enabled }}{{ $keys = append $keys "redis-password" }}{{ end -}}
{{- if and (include "orders-etl.createUser" .) (not .Values.auth.admin.existingSecret) }}{{ $keys = append $keys .Values.auth.admin.passwordKey }}{{ end -}}
{{- toJson $keys -}}
{{- end -}}

{{/*
Pod securityContext: the global podSecurityContext merged with a component override.
Usage: {{ include "orders-etl.podSecurityContext" (dict "ctx" $ "values" .Values.scheduler) | nindent 6 }}
*/}}
{{- define "orders-etl.podSecurityContext" -}}
{{- $override := dict -}}
{{- if and .values .values.securityContexts }}{{ $override = default dict .values.securityContexts.pod }}{{ end -}}
{{- toYaml (mergeOverwrite (deepCopy .ctx.Values.podSecurityContext) $override) -}}
{{- end -}}

{{/*
Container securityContext: the global containerSecurityContext merged with a component override.
Usage: {{ include "orders-etl.containerSecurityContext" (dict "ctx" $ "values" .Values.scheduler) | nindent 12 }}
*/}}
{{- define "orders-etl.containerSecurityContext" -}}
{{- $override := dict -}}
{{- if and .values .values.securityContexts }}{{ $override = default dict .values.securityContexts.container }}{{ end -}}
{{- toYaml (mergeOverwrite (deepCopy .ctx.Values.containerSecurityContext) $override) -}}
{{- end -}}

{{/*
Scheduling of the Jobs' pods (migration, bootstrap, create-user, secrets-init, db-clean):
jobs.nodeSelector and jobs.tolerations, else the global ones.
Usage: {{ with include "orders-etl.jobScheduling" . | trim }}{{ . | nindent 6 }}{{ end }}
*/}}
{{- define "orders-etl.jobScheduling" -}}
{{- with .Values.jobs.nodeSelector | default .Values.global.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.jobs.tolerations | default .Values.global.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.global.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Scheduling of a component's pods: nodeSelector, tolerations, priorityClassName, affinity
(default: preferred anti-affinity per node) and topology spread (default: across zones,
ScheduleAnyway so a single-zone cluster still schedules). Each of nodeSelector,
tolerations, affinity and topologySpreadConstraints is the component's value when set,
else the global one (`global.*`), else the chart's default: replaced, never merged.
Usage: {{ include "orders-etl.scheduling" (dict "ctx" $ "component" "scheduler" "values" .Values.scheduler) | nindent 6 }}
*/}}
{{- define "orders-etl.scheduling" -}}
{{- $g := .ctx.Values.global -}}
{{- with .values.nodeSelector | default $g.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations | default $g.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
affinity:
{{- with .values.affinity | default $g.affinity }}
  {{- toYaml . | nindent 2 }}
{{- else }}
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "orders-etl.selectorLabels" . | nindent 14 }}
{{- end }}
topologySpreadConstraints:
{{- with .values.topologySpreadConstraints | default $g.topologySpreadConstraints }}
  {{- toYaml . | nindent 2 }}
{{- else }}
  - maxSkew: 1
    topologyKey: topology.kubernetes.io/zone
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "orders-etl.selectorLabels" . | nindent 8 }}
{{- end }}
{{- end -}}

{{/*
Pod template metadata of a component: its labels plus `podLabels`, the checksum
annotations (unless "checksums" false) plus `podAnnotations` and any "annotations" given.
Usage: {{ include "orders-etl.podMetadata" (dict "ctx" $ "component" "scheduler" "values" .Values.scheduler) | nindent 4 }}
*/}}
{{- define "orders-etl.podMetadata" -}}
labels:
  {{- include "orders-etl.labels" . | nindent 2 }}
  {{- with .values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- $annotations := dict -}}
{{- if not (eq (toString .checksums) "false") }}{{ $annotations = include "orders-etl.checksums" .ctx | fromYaml }}{{ end -}}
{{- $annotations = merge $annotations (default dict .annotations) (default dict .values.podAnnotations) -}}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
command, args and lifecycle of a component's main container: `command` / `args` from
values when set (templated), else the chart's defaults; `lifecycle` as given.
Usage: {{ include "orders-etl.containerCommand" (dict "ctx" $ "values" $v "command" (list "airflow" "scheduler")) | nindent 10 }}
*/}}
{{- define "orders-etl.containerCommand" -}}
{{- with .values.command | default .command }}
command: {{ tpl (toJson .) $.ctx }}
{{- end }}
{{- with .values.args | default .args }}
args: {{ tpl (toJson .) $.ctx }}
{{- end }}
{{- with .values.lifecycle }}
lifecycle:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
A list from values rendered as YAML list items, templated (extraVolumes,
extraVolumeMounts, extraContainers, extraInitContainers may use {{ .Release.Name }}).
Renders nothing for an empty list.
Usage: {{- include "orders-etl.extraList" (dict "ctx" $ "list" $v.extraVolumes) | nindent 8 }}
*/}}
{{- define "orders-etl.extraList" -}}
{{- with .list }}
{{- tpl (toYaml .) $.ctx }}
{{- end }}
{{- end -}}

{{/*
The log-groomer sidecar: deletes local log files older than `retentionDays` days (and
the folders it empties) every `intervalMinutes`, so the logs emptyDir never fills up
and gets the pod evicted. `logGroomer` merged with the component's `logGroomer`.
Usage: {{- include "orders-etl.logGroomer" (dict "ctx" $ "values" .Values.workers) | nindent 8 }}
*/}}
{{- define "orders-etl.logGroomer" -}}
{{- $g := mergeOverwrite (deepCopy .ctx.Values.logGroomer) (default dict .values.logGroomer) -}}
{{- if $g.enabled }}
- name: log-groomer
  image: {{ include "orders-etl.airflowImage" .ctx }}
  imagePullPolicy: {{ .ctx.Values.images.airflow.pullPolicy }}
  command: ["sh", "-c", {{ .ctx.Files.Get "files/log-groomer.sh" | quote }}]
  env:
    - name: LOG_DIR
      value: /opt/airflow/logs
    - name: RETENTION_DAYS
      value: {{ $g.retentionDays | int64 | quote }}
    - name: INTERVAL_SECONDS
      value: {{ mul (int64 $g.intervalMinutes) 60 | quote }}
  resources:
    {{- toYaml $g.resources | nindent 4 }}
  securityContext:
    {{- include "orders-etl.containerSecurityContext" (dict "ctx" .ctx "values" .values) | nindent 4 }}
  volumeMounts:
    - name: logs
      mountPath: /opt/airflow/logs
{{- end }}
{{- end -}}

{{/*
imagePullSecrets block.
Usage: {{ include "orders-etl.imagePullSecrets" . | nindent 6 }}
*/}}
{{- define "orders-etl.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
Connection env vars (AIRFLOW_CONN_<ID>): from a Secret (secretRef) or non-secret JSON.
Usage: {{ include "orders-etl.connectionEnv" . | nindent 12 }}
*/}}
{{- define "orders-etl.connectionEnv" -}}
{{- range .Values.airflow.connections }}
- name: {{ printf "AIRFLOW_CONN_%s" (.id | upper | replace "-" "_") }}
{{- if .secretRef }}
  valueFrom:
    secretKeyRef:
      name: {{ .secretRef.name }}
      key: {{ .secretRef.key }}
{{- else }}
  value: {{ toJson .json | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
Env shared by Airflow containers that must not see the metadata DB or the signing keys
(KubernetesExecutor task pods): config location, S3 credentials, connections, extraEnv.
Usage: {{ include "orders-etl.taskEnv" . | nindent 12 }}
*/}}
{{- define "orders-etl.taskEnv" -}}
- name: AIRFLOW_HOME
  value: /opt/airflow
- name: AIRFLOW_CONFIG
  value: /opt/airflow/chart-config/airflow.cfg
- name: ORDERS_ETL_CONFIG
  value: /opt/airflow/chart-config/pipeline.yaml
- name: AWS_DEFAULT_REGION
  value: {{ .Values.s3.region | quote }}
{{- if .Values.s3.endpoint }}
- name: AWS_ENDPOINT_URL_S3
  value: {{ .Values.s3.endpoint | quote }}
{{- end }}
{{- if .Values.s3.existingSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .Values.s3.existingSecret }}
      key: AWS_ACCESS_KEY_ID
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .Values.s3.existingSecret }}
      key: AWS_SECRET_ACCESS_KEY
{{- end }}
{{- include "orders-etl.catalogCredentialEnv" . }}
{{- if .Values.airflow.openlineage.transportSecret.name }}
- name: AIRFLOW__OPENLINEAGE__TRANSPORT
  valueFrom:
    secretKeyRef:
      name: {{ .Values.airflow.openlineage.transportSecret.name }}
      key: {{ .Values.airflow.openlineage.transportSecret.key }}
{{- end }}
{{- include "orders-etl.connectionEnv" . }}
{{- with .Values.airflow.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Env of the Airflow components (scheduler, triggerer, dag-processor, api-server, workers,
jobs): taskEnv plus the metadata DB URL, fernet key, API secret, JWT secret and the
broker URL, every credential by secretKeyRef. The broker URL with the in-chart Redis is
assembled by Kubernetes from $(REDIS_PASSWORD), never written out.
Usage: {{ include "orders-etl.airflowEnv" (dict "ctx" $ "extra" .Values.scheduler.extraEnv) | nindent 12 }}
*/}}
{{- define "orders-etl.airflowEnv" -}}
{{- $ctx := .ctx -}}
{{- $secret := include "orders-etl.secretName" $ctx -}}
{{ include "orders-etl.taskEnv" $ctx }}
- name: AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
  valueFrom:
    secretKeyRef:
      name: {{ $ctx.Values.database.existingSecret }}
      key: {{ $ctx.Values.database.connectionKey }}
- name: AIRFLOW__CORE__FERNET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: fernet-key
- name: AIRFLOW__API__SECRET_KEY
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: api-secret-key
- name: AIRFLOW__API_AUTH__JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: jwt-secret
{{- if include "orders-etl.hasCelery" $ctx }}
{{- if $ctx.Values.redis.enabled }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: redis-password
- name: AIRFLOW__CELERY__BROKER_URL
  value: {{ printf "redis://:$(REDIS_PASSWORD)@%s:6379/0" (include "orders-etl.componentName" (dict "ctx" $ctx "component" "redis")) | quote }}
{{- else }}
- name: AIRFLOW__CELERY__BROKER_URL
  valueFrom:
    secretKeyRef:
      name: {{ $ctx.Values.broker.existingSecret }}
      key: {{ $ctx.Values.broker.urlKey }}
{{- end }}
{{- end }}
{{- with .extra }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
envFrom of Airflow containers (airflow.extraEnvFrom).
Usage: {{ include "orders-etl.airflowEnvFrom" . | nindent 10 }}
*/}}
{{- define "orders-etl.airflowEnvFrom" -}}
{{- with .Values.airflow.extraEnvFrom }}
envFrom:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/*
Volumes of Airflow pods: the rendered airflow.cfg (read-only), writable emptyDirs for
/tmp and the local logs (the root filesystem is read-only), the pod template for the scheduler.
Usage: {{ include "orders-etl.airflowVolumes" (dict "ctx" $ "podTemplate" true) | nindent 8 }}
("job" true: a Job's pod, which needs no SparkApplication template)
*/}}
{{- define "orders-etl.airflowVolumes" -}}
- name: config
  projected:
    sources:
      - configMap:
          name: {{ include "orders-etl.componentName" (dict "ctx" .ctx "component" "config") }}
      {{- if and .ctx.Values.spark.enabled (not .job) }}
      {{- /* The SparkApplication template the pipeline's spark task reads (pipeline.yaml
      names this path). Not in the Jobs: their names hash their pod template, and
      switching Spark off must not re-run the migration. */}}
      - configMap:
          name: {{ include "orders-etl.componentName" (dict "ctx" .ctx "component" "spark-template") }}
          items:
            - key: sparkapplication.yaml
              path: sparkapplication.yaml
            - key: iceberg-catalog.json
              path: iceberg-catalog.json
      {{- end }}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
- name: logs
  emptyDir:
    sizeLimit: 2Gi
{{- if .podTemplate }}
- name: pod-template
  configMap:
    name: {{ include "orders-etl.componentName" (dict "ctx" .ctx "component" "pod-template") }}
{{- end }}
{{- end -}}

{{/*
Volume mounts matching orders-etl.airflowVolumes.
Usage: {{ include "orders-etl.airflowVolumeMounts" (dict "podTemplate" true) | nindent 12 }}
*/}}
{{- define "orders-etl.airflowVolumeMounts" -}}
- name: config
  mountPath: /opt/airflow/chart-config
  readOnly: true
- name: tmp
  mountPath: /tmp
- name: logs
  mountPath: /opt/airflow/logs
{{- if .podTemplate }}
- name: pod-template
  mountPath: /opt/airflow/pod_templates
  readOnly: true
{{- end }}
{{- end -}}

{{/*
Init container that waits until the migration Job has brought the schema to this
image's head (`airflow db check-migrations`), so components never start on an old schema.
It gets the component's `extraVolumeMounts` too (CA bundles, client certificates).
Usage: {{ include "orders-etl.waitForMigrations" (dict "ctx" $ "values" $v) | nindent 8 }}
*/}}
{{- define "orders-etl.waitForMigrations" -}}
{{- $ctx := .ctx -}}
- name: wait-for-migrations
  image: {{ include "orders-etl.airflowImage" $ctx }}
  imagePullPolicy: {{ $ctx.Values.images.airflow.pullPolicy }}
  command: ["airflow", "db", "check-migrations", "--migration-wait-timeout={{ $ctx.Values.migrations.waitTimeout }}"]
  env:
    {{- include "orders-etl.airflowEnv" (dict "ctx" $ctx) | nindent 4 }}
  {{- with include "orders-etl.airflowEnvFrom" $ctx | trim }}{{ . | nindent 2 }}{{ end }}
  resources:
    {{- toYaml $ctx.Values.migrations.resources | nindent 4 }}
  securityContext:
    {{- include "orders-etl.containerSecurityContext" (dict "ctx" $ctx) | nindent 4 }}
  volumeMounts:
    {{- include "orders-etl.airflowVolumeMounts" dict | nindent 4 }}
    {{- if .values }}
    {{- include "orders-etl.extraList" (dict "ctx" $ctx "list" .values.extraVolumeMounts) | nindent 4 }}
    {{- end }}
{{- end -}}

{{/*
An exec probe running `airflow jobs check --job-type <type> --local`.
Usage: {{ include "orders-etl.jobCheckProbe" (dict "jobType" "SchedulerJob" "probe" .Values.scheduler.livenessProbe) | nindent 12 }}
*/}}
{{- define "orders-etl.jobCheckProbe" -}}
exec:
  command: ["airflow", "jobs", "check", "--job-type", {{ .jobType | quote }}, "--local"]
{{ toYaml .probe }}
{{- end -}}

{{/*
Checksum annotations rolling pods when the rendered configuration changes.
Usage: {{ include "orders-etl.checksums" . | nindent 8 }}
*/}}
{{- define "orders-etl.checksums" -}}
checksum/airflow-config: {{ include (print .Template.BasePath "/configmaps/configmap-airflow-cfg.yaml") . | sha256sum }}
{{- end -}}

{{/*
PodDisruptionBudget spec: maxUnavailable or minAvailable (never both).
Usage: {{ include "orders-etl.pdbSpec" .Values.scheduler.pdb | nindent 2 }}
*/}}
{{- define "orders-etl.pdbSpec" -}}
{{- if not (kindIs "invalid" .maxUnavailable) }}
maxUnavailable: {{ .maxUnavailable }}
{{- else if not (kindIs "invalid" .minAvailable) }}
minAvailable: {{ .minAvailable }}
{{- else }}
maxUnavailable: 1
{{- end }}
{{- end -}}

{{/*
The PodDisruptionBudget of a component (its `pdb` values: maxUnavailable, else
minAvailable, else maxUnavailable 1). The caller checks `pdb.enabled`.
Usage: {{ include "orders-etl.pdb" (dict "ctx" $ "component" "scheduler" "pdb" .Values.scheduler.pdb) }}
*/}}
{{- define "orders-etl.pdb" -}}
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: {{ include "orders-etl.componentName" . }}
  labels:
    {{- include "orders-etl.labels" . | nindent 4 }}
spec:
  {{- include "orders-etl.pdbSpec" .pdb | trim | nindent 2 }}
  selector:
    matchLabels:
      {{- include "orders-etl.selectorLabels" . | nindent 6 }}
{{- end -}}

{{/*
The ServiceAccount of an Airflow component (its `serviceAccount` values: name,
annotations). No token unless a pod opts in. The caller checks `serviceAccount.create`.
Usage: {{ include "orders-etl.componentServiceAccount" (dict "ctx" $ "component" "scheduler" "values" .Values.scheduler) }}
*/}}
{{- define "orders-etl.componentServiceAccount" -}}
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {{ include "orders-etl.serviceAccountName" . }}
  labels:
    {{- include "orders-etl.labels" . | nindent 4 }}
  annotations:
    {{- include "orders-etl.syncWave" "-3" | nindent 4 }}
    {{- with .values.serviceAccount.annotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
# Pods opt in to a token with automountServiceAccountToken where they need the API.
automountServiceAccountToken: false
{{- end -}}

{{/*
Sync-wave annotation for Argo CD (helm ignores it). Waves: -3 ServiceAccounts, RBAC,
ConfigMaps; -2 secrets-init Job; -1 migration Job; 0 workloads; 1 bootstrap Job.
Usage: {{ include "orders-etl.syncWave" "-3" | nindent 4 }}
*/}}
{{- define "orders-etl.syncWave" -}}
argocd.argoproj.io/sync-wave: {{ . | quote }}
{{- end -}}

{{/*
The pod template of an Airflow component (scheduler, triggerer, dag-processor,
api-server, workers): metadata, scheduling, the wait-for-migrations init container,
the main container with the Airflow env, and every extension point of the component's
values (podLabels, podAnnotations, command, args, lifecycle, extraVolumes,
extraVolumeMounts, extraContainers, extraInitContainers, logGroomer).
Params: ctx, component, values; command (default command list); container (the name);
automount ("true"/"false"); grace (seconds); podTemplate (mount the pod template);
groomer (run the log groomer); ports, probes (YAML of the container's ports/probes);
annotations (extra pod annotations); initContainers, volumes, volumeMounts (extra YAML
lists of the chart's own); hostname/subdomain come from the StatefulSet.
Usage: {{ include "orders-etl.airflowPod" (dict "ctx" $ "component" "scheduler" "values" $v "command" (list "airflow" "scheduler") ...) | nindent 4 }}
*/}}
{{- define "orders-etl.airflowPod" -}}
{{- $ctx := .ctx -}}
{{- $v := .values -}}
{{- $sel := dict "ctx" $ctx "component" .component "values" $v -}}
metadata:
  {{- include "orders-etl.podMetadata" (merge (dict "annotations" .annotations) $sel) | nindent 2 }}
spec:
  serviceAccountName: {{ include "orders-etl.serviceAccountName" $sel }}
  automountServiceAccountToken: {{ .automount }}
  securityContext:
    {{- include "orders-etl.podSecurityContext" (dict "ctx" $ctx "values" $v) | nindent 4 }}
  {{- with include "orders-etl.imagePullSecrets" $ctx | trim }}{{ . | nindent 2 }}{{ end }}
  {{- include "orders-etl.scheduling" $sel | trim | nindent 2 }}
  terminationGracePeriodSeconds: {{ .grace }}
  initContainers:
    {{- include "orders-etl.waitForMigrations" (dict "ctx" $ctx "values" $v) | nindent 4 }}
    {{- with .initContainers }}{{ . | nindent 4 }}{{ end }}
    {{- include "orders-etl.extraList" (dict "ctx" $ctx "list" $v.extraInitContainers) | nindent 4 }}
  containers:
    - name: {{ .container }}
      image: {{ include "orders-etl.airflowImage" $ctx }}
      imagePullPolicy: {{ $ctx.Values.images.airflow.pullPolicy }}
      {{- include "orders-etl.containerCommand" (dict "ctx" $ctx "values" $v "command" .command) | nindent 6 }}
      {{- with .ports }}
      ports:
        {{- . | nindent 8 }}
      {{- end }}
      env:
        {{- include "orders-etl.airflowEnv" (dict "ctx" $ctx "extra" $v.extraEnv) | nindent 8 }}
      {{- with include "orders-etl.airflowEnvFrom" $ctx | trim }}{{ . | nindent 6 }}{{ end }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      securityContext:
        {{- include "orders-etl.containerSecurityContext" (dict "ctx" $ctx "values" $v) | nindent 8 }}
      {{- with .probes }}{{ . | nindent 6 }}{{ end }}
      volumeMounts:
        {{- include "orders-etl.airflowVolumeMounts" (dict "podTemplate" .podTemplate) | nindent 8 }}
        {{- with .volumeMounts }}{{ . | nindent 8 }}{{ end }}
        {{- include "orders-etl.extraList" (dict "ctx" $ctx "list" $v.extraVolumeMounts) | nindent 8 }}
    {{- if .groomer }}
    {{- include "orders-etl.logGroomer" (dict "ctx" $ctx "values" $v) | nindent 4 }}
    {{- end }}
    {{- include "orders-etl.extraList" (dict "ctx" $ctx "list" $v.extraContainers) | nindent 4 }}
  volumes:
    {{- include "orders-etl.airflowVolumes" (dict "ctx" $ctx "podTemplate" .podTemplate) | nindent 4 }}
    {{- with .volumes }}{{ . | nindent 4 }}{{ end }}
    {{- include "orders-etl.extraList" (dict "ctx" $ctx "list" $v.extraVolumes) | nindent 4 }}
{{- end -}}

{{/*
Init container of the api-server with SimpleAuthManager: copies the passwords file from
auth.simple.passwordsSecret into /tmp (SimpleAuthManager opens it read-write; Secret
volumes are read-only), so every replica has the same users and passwords.
Usage: {{ include "orders-etl.simpleAuthPasswordsInit" . }}
*/}}
{{- define "orders-etl.simpleAuthPasswordsInit" -}}
- name: simple-auth-passwords
  image: {{ include "orders-etl.airflowImage" . }}
  imagePullPolicy: {{ .Values.images.airflow.pullPolicy }}
  command: ["cp", "/opt/airflow/simple-auth/passwords.json", "/tmp/simple_auth_manager_passwords.json"]
  resources:
    {{- toYaml .Values.secrets.generate.resources | nindent 4 }}
  securityContext:
    {{- include "orders-etl.containerSecurityContext" (dict "ctx" . "values" .Values.apiServer) | nindent 4 }}
  volumeMounts:
    - name: simple-auth-passwords
      mountPath: /opt/airflow/simple-auth
      readOnly: true
    - name: tmp
      mountPath: /tmp
{{- end -}}

{{/*
Name and key of the Secret holding the FAB admin's password: auth.admin.existingSecret,
else the chart's Secret (generated `admin-password`, or secrets.existingSecret's).
Usage: {{ include "orders-etl.adminPasswordSecret" . }}
*/}}
{{- define "orders-etl.adminPasswordSecret" -}}
{{- default (include "orders-etl.secretName" .) .Values.auth.admin.existingSecret -}}
{{- end -}}

{{/*
"true" when the FAB create-user Job runs (auth.manager fab and auth.admin.create).
Usage: {{ if include "orders-etl.createUser" . }}
*/}}
{{- define "orders-etl.createUser" -}}
{{- if and (eq .Values.auth.manager "fab") .Values.auth.admin.create }}true{{ end -}}
{{- end -}}

{{/*
"true" when task logs go to S3: airflow.logging.remote true, or `auto` with S3
configured (s3.existingSecret or s3.endpoint set).
Usage: {{ if include "orders-etl.remoteLogging" . }}
*/}}
{{- define "orders-etl.remoteLogging" -}}
{{- $r := .Values.airflow.logging.remote -}}
{{- if eq (toString $r) "auto" -}}
{{- if or .Values.s3.existingSecret .Values.s3.endpoint }}true{{ end -}}
{{- else if $r }}true{{ end -}}
{{- end -}}

{{/*
The statsd-exporter mapping config: statsd.mappings, else files/statsd-mappings.yml.
Usage: {{ include "orders-etl.statsdMappings" . }}
*/}}
{{- define "orders-etl.statsdMappings" -}}
{{- .Values.statsd.mappings | default (.Files.Get "files/statsd-mappings.yml") | trim -}}
{{- end -}}

{{/*
The Iceberg catalog's own login (orders_contract.catalog.CREDENTIAL_ENV) from
spark.catalog.existingSecret, for every process that opens the catalog: the Airflow
tasks (pyiceberg) and the Spark driver. Each key is optional: a JDBC catalog needs the
user and password, a REST catalog may need a token.
*/}}
{{- define "orders-etl.catalogCredentialEnv" -}}
{{- with .Values.spark.catalog.existingSecret }}
{{- range $key := list "ICEBERG_JDBC_USER" "ICEBERG_JDBC_PASSWORD" "ICEBERG_REST_TOKEN" }}
- name: {{ $key }}
  valueFrom:
    secretKeyRef:
      name: {{ $.Values.spark.catalog.existingSecret }}
      key: {{ $key }}
      optional: true
{{- end }}
{{- end }}
{{- end -}}
