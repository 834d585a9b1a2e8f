{{/* The chart's name, or nameOverride. */}}
{{- define "anno.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The prefix of every object's name: fullnameOverride, else <release>-<chart name>
(just <release> when the release's name already contains the chart's). Kept to 50
characters so that a component's suffix ("-gateway-offpeak-start") still fits 63.
*/}}
{{- define "anno.fullname" -}}
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

{{- define "anno.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels selecting every pod of this release. */}}
{{- define "anno.selectorLabels" -}}
app.kubernetes.io/name: {{ include "anno.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels on every object. */}}
{{- define "anno.labels" -}}
helm.sh/chart: {{ include "anno.chart" . }}
{{ include "anno.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: anno
{{- end }}

{{/* Selector labels of one component: dict "root" $ "component" "core". */}}
{{- define "anno.componentSelectorLabels" -}}
{{ include "anno.selectorLabels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "anno.componentLabels" -}}
{{ include "anno.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The services of the distributed shape, in the order they are rendered. */}}
{{- define "anno.serviceNames" -}}
gateway auth tenant config core
{{- end }}

{{/* The object name of one component: dict "root" $ "component" "core". */}}
{{- define "anno.componentName" -}}
{{- printf "%s-%s" (include "anno.fullname" .root) .component }}
{{- end }}

{{/* The Service clients and the Ingress reach the gateway at. */}}
{{- define "anno.gatewayServiceName" -}}
{{- if eq .Values.mode "embedded" }}
{{- include "anno.fullname" . }}
{{- else }}
{{- include "anno.componentName" (dict "root" . "component" "gateway") }}
{{- end }}
{{- end }}

{{- define "anno.gatewayServicePort" -}}
{{- if eq .Values.mode "embedded" }}
{{- .Values.embedded.service.port }}
{{- else }}
{{- .Values.gateway.port }}
{{- end }}
{{- end }}

{{/* repository:tag, or repository@digest when a digest is given. */}}
{{- define "anno.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/* The ServiceAccount of the pods that do not call the Kubernetes API. */}}
{{- define "anno.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- include "anno.fullname" . }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The Secret holding one secret value, by its values key (databaseUrl, redisUrl,
keyPepper, serviceSecret, adminKey): its own existingSecret, else secrets.existingSecret.
*/}}
{{- define "anno.secretName" -}}
{{- $item := index .root.Values.secrets .secret }}
{{- $item.existingSecret | default .root.Values.secrets.existingSecret }}
{{- end }}

{{/* The file each secret value is mounted as under /run/secrets/anno, and its variable. */}}
{{- define "anno.secretFile" -}}
{{- .secret | kebabcase }}
{{- end }}

{{- define "anno.secretEnv" -}}
{{- printf "ANNO_%s_FILE" (.secret | snakecase | upper) }}
{{- end }}

{{/*
The secret values one component needs: distributed, each service its own; embedded,
the key pepper, service secret and admin key only when a Secret is named for them.
*/}}
{{- define "anno.componentSecrets" -}}
{{- $root := .root }}
{{- if eq .component "gateway" }}redisUrl
{{- else if eq .component "auth" }}databaseUrl redisUrl keyPepper serviceSecret adminKey
{{- else if eq .component "tenant" }}databaseUrl redisUrl serviceSecret
{{- else if has .component (list "config" "core") }}databaseUrl redisUrl
{{- else if eq .component "migrate" }}databaseUrl
{{- else if eq .component "embedded" }}
{{- range $secret := list "keyPepper" "serviceSecret" "adminKey" }}
{{- if include "anno.secretName" (dict "root" $root "secret" $secret) }} {{ $secret }}{{ end }}
{{- end }}
{{- end }}
{{- end }}

{{/* Fails the render when a component's Secret is not named. */}}
{{- define "anno.requireSecrets" -}}
{{- range $secret := include "anno.componentSecrets" . | splitList " " | compact }}
{{- if not (include "anno.secretName" (dict "root" $.root "secret" $secret)) }}
{{- fail (printf "mode %s needs the Secret holding %s: set secrets.existingSecret (or secrets.%s.existingSecret)" $.root.Values.mode $secret $secret) }}
{{- end }}
{{- end }}
{{- end }}

{{/* ANNO_*_FILE variables for a component's secrets. */}}
{{- define "anno.secretEnvVars" -}}
{{- range $secret := include "anno.componentSecrets" . | splitList " " | compact }}
- name: {{ include "anno.secretEnv" (dict "secret" $secret) }}
  value: /run/secrets/anno/{{ include "anno.secretFile" (dict "secret" $secret) }}
{{- end }}
{{- end }}

{{/* The projected volume of a component's secrets (nothing when it needs none). */}}
{{- define "anno.secretVolume" -}}
{{- $secrets := include "anno.componentSecrets" . | splitList " " | compact }}
{{- if $secrets }}
- name: secrets
  projected:
    defaultMode: 0440
    sources:
    {{- range $secret := $secrets }}
      - secret:
          name: {{ include "anno.secretName" (dict "root" $.root "secret" $secret) }}
          items:
            - key: {{ (index $.root.Values.secrets $secret).key }}
              path: {{ include "anno.secretFile" (dict "secret" $secret) }}
    {{- end }}
{{- end }}
{{- end }}

{{- define "anno.secretVolumeMount" -}}
{{- if include "anno.componentSecrets" . | splitList " " | compact }}
- name: secrets
  mountPath: /run/secrets/anno
  readOnly: true
{{- end }}
{{- end }}

{{/* Variables every anno container gets, then the global and per-component extras. */}}
{{- define "anno.commonEnv" -}}
- name: ANNO_LOG_FORMAT
  value: {{ .root.Values.logFormat | quote }}
- name: RUST_LOG
  value: {{ .root.Values.logLevel | quote }}
{{- end }}

{{- define "anno.extraEnv" -}}
{{- $env := merge (dict) (.extra | default dict) .root.Values.env }}
{{- range $name := keys $env | sortAlpha }}
- name: {{ $name }}
  value: {{ index $env $name | toString | quote }}
{{- end }}
{{- end }}

{{- define "anno.podSecurityContext" -}}
{{ toYaml .Values.podSecurityContext }}
{{- end }}

{{- define "anno.containerSecurityContext" -}}
{{ toYaml .Values.securityContext }}
{{- end }}

{{/* Probes on the container's port named http. */}}
{{- define "anno.probes" -}}
{{- $p := .Values.probes }}
startupProbe:
  httpGet:
    path: /health
    port: http
  periodSeconds: {{ $p.startup.periodSeconds }}
  timeoutSeconds: {{ $p.startup.timeoutSeconds }}
  failureThreshold: {{ $p.startup.failureThreshold }}
livenessProbe:
  httpGet:
    path: /health
    port: http
  initialDelaySeconds: {{ $p.liveness.initialDelaySeconds }}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
readinessProbe:
  httpGet:
    path: /ready
    port: http
  initialDelaySeconds: {{ $p.readiness.initialDelaySeconds }}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
{{- end }}

{{/* Spread a component's pods over zones and nodes. */}}
{{- define "anno.topologySpread" -}}
{{- $t := .root.Values.topologySpread }}
{{- if $t.enabled }}
topologySpreadConstraints:
  - topologyKey: topology.kubernetes.io/zone
    maxSkew: {{ $t.zone.maxSkew }}
    whenUnsatisfiable: {{ $t.zone.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "anno.componentSelectorLabels" . | nindent 8 }}
    matchLabelKeys: ["pod-template-hash"]
  - topologyKey: kubernetes.io/hostname
    maxSkew: {{ $t.hostname.maxSkew }}
    whenUnsatisfiable: {{ $t.hostname.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "anno.componentSelectorLabels" . | nindent 8 }}
    matchLabelKeys: ["pod-template-hash"]
{{- end }}
{{- end }}

{{/* Scheduling settings shared by every pod. */}}
{{- define "anno.scheduling" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The writable /tmp of every pod. */}}
{{- define "anno.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
{{- end }}

{{- define "anno.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* Checks of values the schema cannot express. */}}
{{- define "anno.validate" -}}
{{- if and .Values.ingress.enabled .Values.ingress.tls.enabled (not .Values.ingress.tls.secretName) }}
{{- fail "ingress.tls.enabled needs ingress.tls.secretName" }}
{{- end }}
{{- if and .Values.offPeak.enabled (ne .Values.mode "distributed") }}
{{- fail "offPeak scales core's autoscaler: it needs mode: distributed" }}
{{- end }}
{{- if and .Values.offPeak.enabled (not .Values.core.autoscaling.enabled) }}
{{- fail "offPeak needs core.autoscaling.enabled" }}
{{- end }}
{{- if and .Values.offPeak.enabled (gt (int .Values.offPeak.minReplicas) (int .Values.core.autoscaling.minReplicas)) }}
{{- fail "offPeak.minReplicas is above core.autoscaling.minReplicas: off-peak would raise the floor" }}
{{- end }}
{{- if and (eq .Values.mode "distributed") .Values.networkPolicy.enabled (not (or .Values.networkPolicy.databaseCIDRs .Values.networkPolicy.databasePeers)) }}
{{- fail "distributed with networkPolicy.enabled needs networkPolicy.databaseCIDRs or networkPolicy.databasePeers: where Postgres and Redis are" }}
{{- end }}
{{- range $name := include "anno.serviceNames" . | splitList " " }}
{{- $a := (index $.Values $name).autoscaling }}
{{- if gt (int $a.minReplicas) (int $a.maxReplicas) }}
{{- fail (printf "%s.autoscaling.minReplicas is above its maxReplicas" $name) }}
{{- end }}
{{- end }}
{{- end }}
