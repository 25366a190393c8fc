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

{{- define "modelyard.valkey.fullname" -}}{{ include "modelyard.fullname" . }}-valkey{{- end }}

{{/* The namespaces whose ModelConsumers the operator trusts: consumers.trustedNamespaces, else the release namespace. */}}
{{- define "modelyard.trustedNamespaces" -}}
{{- join "," (default (list .Release.Namespace) .Values.consumers.trustedNamespaces) }}
{{- end }}

{{/* Where Valkey's password is: the existing Secret and key, or the generated Secret's `password`. */}}
{{- define "modelyard.valkey.secret" -}}
{{- default (include "modelyard.valkey.fullname" .) .Values.valkey.auth.existingSecret }}
{{- end }}
{{- define "modelyard.valkey.secretKey" -}}
{{- ternary .Values.valkey.auth.existingSecretKey "password" (not (empty .Values.valkey.auth.existingSecret)) }}
{{- end }}

{{/* The counter store's URL: store.url (as rediss:// with store.tls), else the bundled Valkey's, else empty. */}}
{{- define "modelyard.store.url" -}}
{{- $store := .Values.store }}
{{- if $store.url }}
{{- if $store.tls }}
{{- regexReplaceAll "^redis://" $store.url "rediss://" }}
{{- else }}
{{- $store.url }}
{{- end }}
{{- else if .Values.valkey.enabled }}
{{- if $store.tls }}
{{- fail "store.tls: the bundled Valkey has no TLS; set store.url to a TLS-enabled store, or store.tls=false" }}
{{- end }}
{{- printf "redis://%s.%s.svc:6379/0" (include "modelyard.valkey.fullname" .) .Release.Namespace }}
{{- end }}
{{- end }}

{{/* The proxies' MODELYARD_STORE_* variables (none without a store). */}}
{{- define "modelyard.storeEnv" -}}
{{- $store := .Values.store }}
{{- $url := include "modelyard.store.url" . }}
{{- if and (not $url) $store.existingSecret }}
{{- fail "store.existingSecret needs a store: set store.url or valkey.enabled" }}
{{- end }}
{{- if $url }}
- name: MODELYARD_STORE_URL
  value: {{ $url | quote }}
{{- if or $store.existingSecret (and .Values.valkey.enabled (not $store.url)) }}
- name: MODELYARD_STORE_PASSWORD
  valueFrom:
    secretKeyRef:
      {{- if $store.existingSecret }}
      name: {{ $store.existingSecret }}
      key: {{ $store.passwordKey }}
      {{- else }}
      name: {{ include "modelyard.valkey.secret" . }}
      key: {{ include "modelyard.valkey.secretKey" . }}
      {{- end }}
{{- end }}
{{- with $store.timeoutMs }}
- name: MODELYARD_STORE_TIMEOUT_MS
  value: {{ . | int | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The proxies' forward proxy and CA bundle variables (none by default); the URL with credentials only from a Secret. */}}
{{- define "modelyard.egressEnv" -}}
{{- $egress := .Values.egress }}
{{- if $egress.proxySecret.name }}
{{- if or $egress.httpsProxy $egress.httpProxy }}
{{- fail "egress.proxySecret replaces egress.httpsProxy and egress.httpProxy: set one or the other" }}
{{- end }}
{{- range list "HTTPS_PROXY" "HTTP_PROXY" }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: {{ $egress.proxySecret.name }}
      key: {{ $egress.proxySecret.key }}
{{- end }}
{{- else }}
{{- with $egress.httpsProxy }}
- name: HTTPS_PROXY
  value: {{ . | quote }}
{{- end }}
{{- with $egress.httpProxy }}
- name: HTTP_PROXY
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- with $egress.noProxy }}
- name: NO_PROXY
  value: {{ . | quote }}
{{- end }}
{{- if $egress.caBundle.secretName }}
- name: MODELYARD_CA_BUNDLE
  value: /etc/modelyard/egress-ca/ca.crt
{{- end }}
{{- end }}

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
  resources: [modelroutes, providercredentials, modelconsumers]
  verbs: [get, list, watch]
- apiGroups: [modelyard.io]
  resources: [modelroutes/status, providercredentials/status]
  verbs: [patch]
- apiGroups: [modelyard.io]
  resources: [modelconsumers/status]
  verbs: [get, patch, update]
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
