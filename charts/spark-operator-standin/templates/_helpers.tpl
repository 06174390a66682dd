{{- define "standin.name" -}}{{ .Release.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- define "standin.labels" -}}
app.kubernetes.io/name: spark-operator-standin
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}
{{- define "standin.podTemplate" -}}
apiVersion: v1
kind: Pod
metadata:
  labels:
    app.kubernetes.io/managed-by: spark-operator-standin
spec:
  securityContext:
    runAsNonRoot: true
    runAsUser: {{ .Values.sparkPods.runAsUser }}
    runAsGroup: 0
    fsGroup: {{ .Values.sparkPods.runAsUser }}
    seccompProfile:
      type: RuntimeDefault
  {{- with .Values.sparkPods.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.sparkPods.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: spark
      securityContext:
        allowPrivilegeEscalation: false
        runAsNonRoot: true
        capabilities:
          drop: ["ALL"]
        seccompProfile:
          type: RuntimeDefault
{{- end -}}
