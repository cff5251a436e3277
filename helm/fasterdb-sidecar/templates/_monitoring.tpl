{{/* Monitoring helpers: thresholds for people, alert matchers. */}}

{{/* A threshold as people read it: (dict "value" V "unit" bytes|seconds|ratio|count). */}}
{{- define "fasterdb-sidecar.humanThreshold" -}}
{{- $v := float64 .value }}
{{- if eq .unit "bytes" }}
{{- if ge $v 1073741824.0 }}{{ printf "%g GiB" (divf $v 1073741824) }}
{{- else if ge $v 1048576.0 }}{{ printf "%g MiB" (divf $v 1048576) }}
{{- else if ge $v 1024.0 }}{{ printf "%g KiB" (divf $v 1024) }}
{{- else }}{{ printf "%g bytes" $v }}{{ end }}
{{- else if eq .unit "seconds" }}
{{- if and (ge $v 3600.0) (eq (mod (int $v) 3600) 0) }}{{ printf "%d hours" (div (int $v) 3600) | replace "1 hours" "1 hour" }}
{{- else if and (ge $v 60.0) (eq (mod (int $v) 60) 0) }}{{ printf "%d minutes" (div (int $v) 60) | replace "1 minutes" "1 minute" }}
{{- else }}{{ printf "%g seconds" $v }}{{ end }}
{{- else if eq .unit "ratio" }}
{{- printf "%g%%" (mulf $v 100) }}
{{- else }}
{{- printf "%g" $v }}
{{- end }}
{{- end }}

{{/* The label matchers every alert expression carries: this release's namespace (plus extras). */}}
{{- define "fasterdb-sidecar.alertSelector" -}}
{{- $matchers := list (printf "namespace=%q" (include "fasterdb-sidecar.namespace" .)) }}
{{- range $key, $value := .Values.prometheusRule.matchLabels }}
{{- $matchers = append $matchers (printf "%s=%q" $key $value) }}
{{- end }}
{{- join ", " $matchers }}
{{- end }}

{{/* A number as PromQL reads it best: integers without an exponent (67108864, not 6.7108864e+07). */}}
{{- define "fasterdb-sidecar.number" -}}
{{- $v := float64 . }}
{{- if eq $v (float64 (int64 $v)) }}{{ int64 $v }}{{ else }}{{ $v }}{{ end }}
{{- end }}
