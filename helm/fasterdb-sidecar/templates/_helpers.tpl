{{/* Chart name, truncated to 63 characters. */}}
{{- define "fasterdb-sidecar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name: release-chart unless the release name already contains the chart name. */}}
{{- define "fasterdb-sidecar.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "fasterdb-sidecar.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "fasterdb-sidecar.labels" -}}
helm.sh/chart: {{ include "fasterdb-sidecar.chart" . }}
{{ include "fasterdb-sidecar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* Selector labels; app.kubernetes.io/name is what `fasterdb-admin --kube` selects by default. */}}
{{- define "fasterdb-sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fasterdb-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "fasterdb-sidecar.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fasterdb-sidecar.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The namespace of every object: namespaceOverride, else the release's. */}}
{{- define "fasterdb-sidecar.namespace" -}}
{{- default .Release.Namespace .Values.namespaceOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Kubernetes version the chart renders for: the kubeVersion value, else the cluster's. */}}
{{- define "fasterdb-sidecar.kubeVersion" -}}
{{- default .Capabilities.KubeVersion.Version .Values.kubeVersion }}
{{- end }}

{{/* The image: repository@digest when a digest is set (immutable), else repository:tag. */}}
{{- define "fasterdb-sidecar.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret holding the DSNs (and the admin token): the user's, or the one this chart renders. */}}
{{- define "fasterdb-sidecar.secretName" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else }}
{{- include "fasterdb-sidecar.fullname" . }}
{{- end }}
{{- end }}

{{/* Fails rendering with one clear message when no database is configured. */}}
{{- define "fasterdb-sidecar.validate" -}}
{{- if not .Values.database.existingSecret }}
{{- $_ := required "fasterdb-sidecar: set database.primaryDsn (rendered into a Secret) or database.existingSecret (a Secret with key primary-dsn)" .Values.database.primaryDsn }}
{{- end }}
{{- if le (float64 .Values.probes.readiness.timeoutSeconds) (float64 .Values.health.timeout) }}
{{- fail "fasterdb-sidecar: probes.readiness.timeoutSeconds must be larger than health.timeout, or kubelet gives up before the sidecar answers" }}
{{- end }}
{{- if .Values.standalone.enabled }}
{{- $stop := include "fasterdb-sidecar.stopSeconds" . | float64 }}
{{- $drain := addf (include "fasterdb-sidecar.drainMinSeconds" .) .Values.lifecycle.shutdownTimeoutSeconds $stop }}
{{- if le (float64 .Values.terminationGracePeriodSeconds) $drain }}
{{- fail (printf "fasterdb-sidecar: terminationGracePeriodSeconds must exceed lifecycle.drainMinSeconds + lifecycle.shutdownTimeoutSeconds + %g (%g), or the kubelet kills the sidecar before it drains" $stop $drain) }}
{{- end }}
{{- end }}
{{- $_ := include "fasterdb-sidecar.mode" . }}
{{- if and .Values.rbac.create (not .Values.rbac.subjects) }}
{{- fail "fasterdb-sidecar: rbac.create needs rbac.subjects (who may use fasterdb-admin --kube), e.g. a ServiceAccount or a Group" }}
{{- end }}
{{- end }}

{{/*
Seconds the sidecar takes after its drain limit: the cut-off requests' answers and the pools' close
(fasterdb_sidecar.drain.STOP_SECONDS; tests/chart checks that the two agree).
*/}}
{{- define "fasterdb-sidecar.stopSeconds" -}}
2
{{- end }}
