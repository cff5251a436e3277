{{/*
The sidecar as named templates, for this chart's standalone Deployment and for application charts
that declare this chart as a dependency. In an application chart, call them with this chart's own
context, so they read its values (`fasterdb-sidecar:` in the application's values):

    {{- $fasterdb := index .Subcharts "fasterdb-sidecar" }}
    initContainers:
      {{- include "fasterdb-sidecar.initContainers" $fasterdb | nindent 8 }}
    containers:
      {{- include "fasterdb-sidecar.containers" $fasterdb | nindent 8 }}
      - name: my-app ...
    volumes:
      {{- include "fasterdb-sidecar.volumes" $fasterdb | nindent 8 }}

`fasterdb-sidecar.container` is the container itself (a list item) for a chart that places it.
The pod needs no fsGroup: the container has its own user, group and seccomp profile, and its
secret files are readable inside it (the volume is mounted into this container alone).
*/}}

{{/* "native" or "container": where the sidecar goes in a pod beside an application. */}}
{{- define "fasterdb-sidecar.mode" -}}
{{- $version := include "fasterdb-sidecar.kubeVersion" . }}
{{- $supported := semverCompare ">=1.29.0-0" $version }}
{{- if eq .Values.sidecar.mode "native" }}
{{- if not $supported }}
{{- fail (printf "fasterdb-sidecar: sidecar.mode=native needs Kubernetes 1.29 or newer (native sidecar containers); this is %s: use sidecar.mode=container or auto" $version) }}
{{- end }}
{{- "native" }}
{{- else if eq .Values.sidecar.mode "container" }}
{{- "container" }}
{{- else }}
{{- ternary "native" "container" $supported }}
{{- end }}
{{- end }}

{{/* Seconds the sidecar keeps serving after SIGTERM. Native: 0 (it is stopped after the
application has exited, when nobody needs it); otherwise 5, while endpoints drop the pod. */}}
{{- define "fasterdb-sidecar.drainMinSeconds" -}}
{{- if kindIs "invalid" .Values.lifecycle.drainMinSeconds }}
{{- ternary 0 5 (eq (include "fasterdb-sidecar.placement" .) "native") }}
{{- else }}
{{- .Values.lifecycle.drainMinSeconds }}
{{- end }}
{{- end }}

{{/* Where this chart's own standalone pod puts the sidecar: beside an app container per mode,
alone as a regular container (a pod needs one). Application charts use the mode directly. */}}
{{- define "fasterdb-sidecar.placement" -}}
{{- if and .Values.standalone.enabled (not .Values.app) }}
{{- "container" }}
{{- else }}
{{- include "fasterdb-sidecar.mode" . }}
{{- end }}
{{- end }}

{{/* The sidecar container (one list item); `restartPolicy: Always` makes it a native sidecar
when placed under initContainers. The container is always named fasterdb-sidecar. */}}
{{- define "fasterdb-sidecar.container" -}}
{{- include "fasterdb-sidecar.validate" . }}
{{- $native := eq (include "fasterdb-sidecar.placement" .) "native" }}
{{- $secrets := "/etc/fasterdb/secrets" -}}
- name: fasterdb-sidecar
  image: {{ include "fasterdb-sidecar.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if $native }}
  restartPolicy: Always
  {{- end }}
  # Probes may use the name (kubelet resolves it in this container); Services and NetworkPolicies
  # use the number: they resolve names only in `containers` (Services: sidecars from 1.33 on).
  ports:
    - name: fasterdb-http
      containerPort: {{ .Values.service.port }}
      protocol: TCP
  env:
    # Secrets arrive as files (a read-only volume); the environment holds only their paths.
    - name: FASTERDB_PRIMARY_DSN_FILE
      value: {{ printf "%s/primary-dsn" $secrets | quote }}
    - name: FASTERDB_REPLICA_DSNS_FILE
      value: {{ printf "%s/replica-dsns" $secrets | quote }}
    - name: FASTERDB_ADMIN_TOKEN_FILE
      value: {{ printf "%s/admin-token" $secrets | quote }}
    # Every address of both families (IPv6-only, dual-stack and IPv4 clusters; 127.0.0.1 for the
    # application beside it); the sidecar falls back to 0.0.0.0 where the kernel has no IPv6.
    - name: FASTERDB_HOST
      value: "::"
    - name: FASTERDB_PORT
      value: {{ .Values.service.port | quote }}
    - name: FASTERDB_POOL_MIN_SIZE
      value: {{ .Values.pool.minSize | quote }}
    - name: FASTERDB_POOL_MAX_SIZE
      value: {{ .Values.pool.maxSize | quote }}
    - name: FASTERDB_MAX_LAG_BYTES
      value: {{ .Values.replicaLag.maxBytes | quote }}
    - name: FASTERDB_MAX_LAG_SECONDS
      value: {{ .Values.replicaLag.maxSeconds | quote }}
    - name: FASTERDB_HEALTH_TIMEOUT
      value: {{ .Values.health.timeout | quote }}
    - name: FASTERDB_HEALTH_CACHE_TTL
      value: {{ .Values.health.cacheTtl | quote }}
    - name: FASTERDB_JOB_MAX_REPLICA_LAG_BYTES
      value: {{ .Values.jobs.maxReplicaLagBytes | quote }}
    - name: FASTERDB_JOB_MAX_POOL_WAITING
      value: {{ .Values.jobs.maxPoolWaiting | quote }}
    - name: FASTERDB_SCHEMA
      value: {{ .Values.schema | quote }}
    - name: FASTERDB_LOG_LEVEL
      value: {{ .Values.logLevel | quote }}
    - name: FASTERDB_DRAIN_MIN_SECONDS
      value: {{ include "fasterdb-sidecar.drainMinSeconds" . | quote }}
    - name: FASTERDB_SHUTDOWN_TIMEOUT
      value: {{ .Values.lifecycle.shutdownTimeoutSeconds | quote }}
    {{- with .Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  startupProbe:
    httpGet:
      path: {{ .Values.probes.startup.path }}
      port: fasterdb-http
    periodSeconds: {{ .Values.probes.startup.periodSeconds }}
    timeoutSeconds: {{ .Values.probes.startup.timeoutSeconds }}
    failureThreshold: {{ .Values.probes.startup.failureThreshold }}
  readinessProbe:
    httpGet:
      path: {{ .Values.probes.readiness.path }}
      port: fasterdb-http
    periodSeconds: {{ .Values.probes.readiness.periodSeconds }}
    timeoutSeconds: {{ .Values.probes.readiness.timeoutSeconds }}
    failureThreshold: {{ .Values.probes.readiness.failureThreshold }}
    successThreshold: {{ .Values.probes.readiness.successThreshold }}
  livenessProbe:
    httpGet:
      path: {{ .Values.probes.liveness.path }}
      port: fasterdb-http
    periodSeconds: {{ .Values.probes.liveness.periodSeconds }}
    timeoutSeconds: {{ .Values.probes.liveness.timeoutSeconds }}
    failureThreshold: {{ .Values.probes.liveness.failureThreshold }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  volumeMounts:
    - name: fasterdb-secrets
      mountPath: {{ $secrets }}
      readOnly: true
    - name: fasterdb-tmp
      mountPath: /tmp
{{- end }}

{{/* A pod annotation (one map entry) that changes with the DSNs and token this chart renders, so
pods roll when they change. An existingSecret is not read at render time: the kubelet updates its
files in the running pods (within its sync period) and the sidecar re-reads them. */}}
{{- define "fasterdb-sidecar.podAnnotations" -}}
checksum/fasterdb-secret: {{ toJson (list .Values.database .Values.adminToken) | sha256sum }}
{{- end }}

{{/* The sidecar under initContainers in native mode; nothing in container mode. */}}
{{- define "fasterdb-sidecar.initContainers" -}}
{{- if eq (include "fasterdb-sidecar.placement" .) "native" }}
{{- include "fasterdb-sidecar.container" . }}
{{- end }}
{{- end }}

{{/* The sidecar under containers in container mode; nothing in native mode. */}}
{{- define "fasterdb-sidecar.containers" -}}
{{- if eq (include "fasterdb-sidecar.placement" .) "container" }}
{{- include "fasterdb-sidecar.container" . }}
{{- end }}
{{- end }}

{{/* The sidecar's volumes (list items): its Secret as read-only files, and a small writable /tmp.
A whole-volume mount, never subPath: the kubelet updates a rotated Secret's files only then. Mode
0444 (Kubernetes' default is 0644) makes them readable to the sidecar's user without a pod-wide
fsGroup, which would chown every volume of the pod; only the sidecar container mounts this one. */}}
{{- define "fasterdb-sidecar.volumes" -}}
- name: fasterdb-secrets
  projected:
    defaultMode: 0444
    sources:
      - secret:
          name: {{ include "fasterdb-sidecar.secretName" . }}
          items:
            - key: primary-dsn
              path: primary-dsn
      # Optional keys: a Secret without them leaves the file out, and the setting unset.
      - secret:
          name: {{ include "fasterdb-sidecar.secretName" . }}
          optional: true
          items:
            - key: replica-dsns
              path: replica-dsns
      - secret:
          name: {{ include "fasterdb-sidecar.secretName" . }}
          optional: true
          items:
            - key: admin-token
              path: admin-token
- name: fasterdb-tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}
