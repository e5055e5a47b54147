{{/* Release-scoped name: "memha" for a release called memha, else "<release>-memha". */}}
{{- define "memha.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "memha.controller" -}}{{ include "memha.fullname" . }}-controller{{- end -}}
{{- define "memha.webhookConfig" -}}{{ include "memha.fullname" . }}-sidecar-injector{{- end -}}
{{- define "memha.tlsSecret" -}}{{ .Values.secrets.webhookTls | default (printf "%s-webhook-tls" (include "memha.fullname" .)) }}{{- end -}}
{{- define "memha.signingSecret" -}}{{ .Values.secrets.pushSigningKey | default (printf "%s-push-signing-key" (include "memha.fullname" .)) }}{{- end -}}
{{- define "memha.statusConfigMap" -}}{{ .Values.controller.statusConfigMap | default (printf "%s-status" (include "memha.fullname" .)) }}{{- end -}}
{{- define "memha.leaseName" -}}{{ .Values.controller.leaderElection.leaseName | default (include "memha.controller" .) }}{{- end -}}

{{- define "memha.image" -}}{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}{{- end -}}
{{- define "memha.sidecarImage" -}}
{{- $repo := .Values.sidecar.image.repository | default .Values.image.repository -}}
{{- $tag := .Values.sidecar.image.tag | default .Values.image.tag | default .Chart.AppVersion -}}
{{ $repo }}:{{ $tag }}
{{- end -}}

{{- define "memha.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ .Chart.Name }}-{{ .Chart.Version }}
{{- end -}}

{{- define "memha.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}
