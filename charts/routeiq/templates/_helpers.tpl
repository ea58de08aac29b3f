{{/* Names and labels. */}}
{{- define "routeiq.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "routeiq.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "routeiq.selectorLabels" -}}
app.kubernetes.io/name: {{ include "routeiq.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "routeiq.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "routeiq.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "routeiq.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "routeiq.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "routeiq.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* Whether PostgreSQL / Redis are configured at all (bundled or external). */}}
{{- define "routeiq.database" -}}
{{- if or .Values.postgresql.bundled.enabled .Values.postgresql.external.existingSecret -}}true{{- end -}}
{{- end -}}
{{- define "routeiq.redis" -}}
{{- if or .Values.redis.bundled.enabled .Values.redis.external.existingSecret -}}true{{- end -}}
{{- end -}}

{{/* The hook phases of the migration Job: before the new pods when the database already exists
     (external, or any upgrade); after install when the chart itself brings PostgreSQL up. */}}
{{- define "routeiq.migrationHook" -}}
{{- if .Values.postgresql.bundled.enabled -}}post-install,pre-upgrade{{- else -}}pre-install,pre-upgrade{{- end -}}
{{- end -}}

{{/* The gateway's environment, shared by the pods and the migration Job. */}}
{{- define "routeiq.env" -}}
- name: ROUTEIQ_CONFIG
  value: /etc/routeiq/config.yaml
- name: ROUTEIQ_PORT
  value: "4000"
- name: ROUTEIQ_WORKERS
  value: {{ .Values.workers | quote }}
- name: ROUTEIQ_DRAIN_TIMEOUT_SECONDS
  value: {{ .Values.drainTimeoutSeconds | quote }}
{{- if .Values.auth.existingSecret }}
- name: ROUTEIQ_MASTER_KEY
  valueFrom:
    secretKeyRef: {name: {{ .Values.auth.existingSecret }}, key: {{ .Values.auth.masterKeyKey }}}
- name: ROUTEIQ_ADMIN_KEYS
  valueFrom:
    secretKeyRef: {name: {{ .Values.auth.existingSecret }}, key: {{ .Values.auth.adminKeysKey }}, optional: true}
{{- end }}
{{- if .Values.redis.bundled.enabled }}
- name: ROUTEIQ_REDIS_URL
  value: {{ printf "redis://%s-redis:6379/0" (include "routeiq.fullname" .) | quote }}
{{- else if .Values.redis.external.existingSecret }}
- name: ROUTEIQ_REDIS_URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.redis.external.existingSecret }}, key: {{ .Values.redis.external.urlKey }}}
{{- end }}
{{- if .Values.postgresql.bundled.enabled }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef: {name: {{ include "routeiq.fullname" . }}-postgresql, key: password}
- name: ROUTEIQ_DATABASE_URL
  value: {{ printf "postgresql://routeiq:$(PGPASSWORD)@%s-postgresql:5432/routeiq" (include "routeiq.fullname" .) | quote }}
{{- else if .Values.postgresql.external.existingSecret }}
- name: ROUTEIQ_DATABASE_URL
  valueFrom:
    secretKeyRef: {name: {{ .Values.postgresql.external.existingSecret }}, key: {{ .Values.postgresql.external.urlKey }}}
{{- end }}
{{- if and (include "routeiq.database" .) .Values.migrations.enabled }}
- name: ROUTEIQ_DATABASE_MIGRATE_ON_STARTUP
  value: "false"
{{- end }}
{{- range $name, $value := .Values.env }}
- name: {{ $name }}
  value: {{ $value | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "routeiq.podSecurity" -}}
{{- toYaml .Values.podSecurityContext -}}
{{- end -}}
