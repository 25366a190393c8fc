{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "modelyard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* `<release>-<chart>` unless the release name already contains the chart name; leaves room for suffixes. */}}
{{- define "modelyard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 50 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 50 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "modelyard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every resource. */}}
{{- define "modelyard.labels" -}}
helm.sh/chart: {{ include "modelyard.chart" . }}
app.kubernetes.io/name: {{ include "modelyard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: modelyard
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: include with (dict "ctx" $ "component" "proxy"). */}}
{{- define "modelyard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "modelyard.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "modelyard.componentLabels" -}}
{{ include "modelyard.labels" .ctx }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "modelyard.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "modelyard.operator.fullname" -}}{{ include "modelyard.fullname" . }}-operator{{- end }}
{{- define "modelyard.proxy.fullname" -}}{{ include "modelyard.fullname" . }}-proxy{{- end }}
{{/* Headless Service listing every proxy pod's admin port: the operator discovers the proxies from its EndpointSlices. */}}
{{- define "modelyard.proxy.adminService" -}}{{ include "modelyard.fullname" . }}-proxy-admin{{- end }}
{{- define "modelyard.tableSecret" -}}{{ include "modelyard.fullname" . }}-routing-table{{- end }}
{{- define "modelyard.apiKeysSecret" -}}{{ include "modelyard.fullname" . }}-api-keys{{- end }}

{{- define "modelyard.adminTokenSecret" -}}
{{- default (printf "%s-admin-token" (include "modelyard.fullname" .)) .Values.adminToken.existingSecret }}
{{- end }}

{{- define "modelyard.operator.serviceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (include "modelyard.operator.fullname" .) .Values.operator.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Standard OTEL_* variables from .Values.otel (none when no endpoint is set). Include with (dict "ctx" $ "service" "modelyard-proxy"). */}}
{{- define "modelyard.otelEnv" -}}
{{- $otel := .ctx.Values.otel }}
{{- if $otel.endpoint }}
- name: OTEL_SERVICE_NAME
  value: {{ .service | quote }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ $otel.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $otel.protocol | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $otel.sampler | quote }}
{{- with $otel.samplerArg }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ . | quote }}
{{- end }}
{{- $attrs := list (printf "k8s.namespace.name=%s" .ctx.Release.Namespace) }}
{{- range $key, $value := $otel.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $key $value) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attrs | quote }}
{{- end }}
{{- end }}

{{/* RBAC rules the operator needs wherever it watches (see operator-rbac.yaml). */}}
{{- define "modelyard.operator.watchRules" -}}
- apiGroups: [modelyard.io]
  resources: [modelroutes, providercredentials]
  verbs: [get, list, watch]
- apiGroups: [modelyard.io]
  resources: [modelroutes/status, providercredentials/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [get, list, watch]
{{- end }}
