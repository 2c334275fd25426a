{{- define "mlrt.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}{{ .Release.Name | trunc 40 | trimSuffix "-" }}{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" }}{{- end -}}
{{- end -}}

{{- define "mlrt.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "mlrt.selector" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "mlrt.image" -}}
{{- $tag := .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- if .root.Values.image.registry -}}{{ printf "%s/mlrt/%s:%s" (trimSuffix "/" .root.Values.image.registry) .name $tag }}{{- else -}}{{ printf "mlrt/%s:%s" .name $tag }}{{- end -}}
{{- end -}}

{{/* Pod Security "restricted": the pod and container security contexts used everywhere. */}}
{{- define "mlrt.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 185
runAsGroup: 185
fsGroup: 185
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "mlrt.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 185
capabilities:
  drop: ["ALL"]
{{- end -}}

{{- define "mlrt.jupyterSecret" -}}{{ .Values.jupyter.existingSecret | default (printf "%s-jupyter" (include "mlrt.fullname" .)) }}{{- end -}}
{{- define "mlrt.sparkAuthSecret" -}}{{ include "mlrt.fullname" . }}-spark-auth{{- end -}}
{{- define "mlrt.driverService" -}}{{ include "mlrt.fullname" . }}-driver{{- end -}}
{{- define "mlrt.serviceAccount" -}}{{ include "mlrt.fullname" . }}-spark{{- end -}}

{{/* A generated value that survives `helm upgrade`: the given one, else the one in the live Secret, else new. */}}
{{- define "mlrt.keepSecret" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .name -}}
{{- if .value -}}{{ .value | b64enc }}
{{- else if and $existing (index $existing.data .key) -}}{{ index $existing.data .key }}
{{- else -}}{{ randAlphaNum 48 | b64enc }}{{- end -}}
{{- end -}}

{{- define "mlrt.tmpVolumes" -}}
- name: tmp
  emptyDir: {}
- name: home
  emptyDir: {}
{{- end -}}

{{- define "mlrt.tmpMounts" -}}
- name: tmp
  mountPath: /tmp
- name: home
  mountPath: /home/mlrt
{{- end -}}
