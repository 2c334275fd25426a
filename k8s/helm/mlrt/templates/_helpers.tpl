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
{{- define "mlrt.connectSecret" -}}{{ .Values.connect.existingSecret | default (printf "%s-connect" (include "mlrt.fullname" .)) }}{{- end -}}
{{- define "mlrt.sparkAuthSecret" -}}{{ include "mlrt.fullname" . }}-spark-auth{{- end -}}
{{- define "mlrt.driverService" -}}{{ include "mlrt.fullname" . }}-driver{{- end -}}
{{- define "mlrt.serviceAccount" -}}{{ include "mlrt.fullname" . }}-spark{{- end -}}
{{- define "mlrt.sparkConfigMap" -}}{{ include "mlrt.fullname" . }}-spark{{- end -}}
{{- define "mlrt.eventLogClaim" -}}{{ include "mlrt.fullname" . }}-spark-events{{- end -}}

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

{{/* Object storage (values objectStore): the endpoint, the Secret with the key pair ("" = none; always "" in mode none). */}}
{{- define "mlrt.s3Enabled" -}}{{ if ne .Values.objectStore.mode "none" }}true{{ end }}{{- end -}}
{{- define "mlrt.s3Endpoint" -}}
{{- if eq .Values.objectStore.mode "bundled" -}}http://{{ include "mlrt.fullname" . }}-objectstore:8333
{{- else if eq .Values.objectStore.mode "external" -}}{{ .Values.objectStore.external.endpoint | trimSuffix "/" }}{{- end -}}
{{- end -}}
{{- define "mlrt.s3Secret" -}}
{{- if eq .Values.objectStore.mode "bundled" -}}{{ include "mlrt.fullname" . }}-objectstore
{{- else if eq .Values.objectStore.mode "external" -}}{{ .Values.objectStore.external.existingSecret }}{{- end -}}
{{- end -}}
{{- define "mlrt.s3Check" -}}
{{- $o := .Values.objectStore -}}
{{- if and $o.external.webIdentity.enabled $o.external.existingSecret -}}
{{- fail "objectStore.external: existingSecret (static keys) and webIdentity.enabled (no static keys) are both set; choose one" -}}
{{- end -}}
{{- if and $o.external.webIdentity.enabled (ne $o.mode "external") -}}
{{- fail (printf "objectStore.external.webIdentity.enabled needs objectStore.mode external (it is %s)" $o.mode) -}}
{{- end -}}
{{- end -}}
{{- define "mlrt.s3ServiceAccount" -}}{{ include "mlrt.fullname" . }}-s3{{- end -}}
{{- define "mlrt.webIdentity" -}}{{ if and (eq .Values.objectStore.mode "external") .Values.objectStore.external.webIdentity.enabled }}true{{ end }}{{- end -}}
{{- define "mlrt.mlflowArtifacts" -}}
{{- if .Values.mlflow.artifactsDestination -}}{{ .Values.mlflow.artifactsDestination }}
{{- else if include "mlrt.s3Enabled" . -}}s3://{{ .Values.objectStore.buckets.mlflow }}/artifacts
{{- else -}}/opt/mlrt/mlflow/artifacts{{- end -}}
{{- end -}}

{{/* What a driver (notebook, test or submitted) needs for s3a://: env, then the key pair's mount. */}}
{{- define "mlrt.s3Env" -}}
{{- if include "mlrt.s3Enabled" . }}
- name: MLRT_WAREHOUSE_DIR
  value: s3a://{{ .Values.objectStore.buckets.lake }}/warehouse
- name: MLRT_S3_REGION
  value: {{ .Values.objectStore.external.region | quote }}
{{- with include "mlrt.s3Endpoint" . }}
- name: MLRT_S3_ENDPOINT
  value: {{ . }}
{{- end }}
{{- if include "mlrt.s3Secret" . }}
- name: MLRT_S3_CREDENTIALS_DIR
  value: /etc/mlrt/s3
{{- end }}
{{- end }}
{{- end -}}
{{/* Where a driver's --packages resolve from (entrypoint.sh writes its Ivy settings); unset: the image's default. */}}
{{- define "mlrt.mavenEnv" -}}
{{- with .Values.spark.mavenRepositories }}
- name: MLRT_MAVEN_REPOSITORIES
  value: {{ join "," . | quote }}
{{- end }}
{{- end -}}
{{- define "mlrt.s3Mounts" -}}
{{- if include "mlrt.s3Secret" . }}
- name: s3-credentials
  mountPath: /etc/mlrt/s3
  readOnly: true
{{- end }}
{{- end -}}
{{- define "mlrt.s3Volumes" -}}
{{- if include "mlrt.s3Secret" . }}
- name: s3-credentials
  secret:
    secretName: {{ include "mlrt.s3Secret" . }}
{{- end }}
{{- end -}}

{{/* MLflow authentication (values mlflow.auth): the Secret holding the account (username, password); "" = off. */}}
{{- define "mlrt.mlflowSecret" -}}
{{- if and .Values.mlflow.enabled .Values.mlflow.auth.enabled -}}
{{- .Values.mlflow.auth.existingSecret | default (printf "%s-mlflow-auth" (include "mlrt.fullname" .)) -}}
{{- end -}}
{{- end -}}

{{/* What an MLflow client (notebook, Connect server, test pod) needs: the server, then the account's mount, which
the image's entrypoint turns into ~/.mlflow/credentials (never an environment variable). */}}
{{- define "mlrt.mlflowClientEnv" -}}
{{- if .Values.mlflow.enabled }}
- name: MLFLOW_TRACKING_URI
  value: http://{{ include "mlrt.fullname" . }}-mlflow:5000
{{- if include "mlrt.mlflowSecret" . }}
- name: MLRT_MLFLOW_CREDENTIALS_DIR
  value: /etc/mlrt/mlflow
{{- end }}
{{- end }}
{{- end -}}
{{- define "mlrt.mlflowMounts" -}}
{{- if include "mlrt.mlflowSecret" . }}
- name: mlflow-account
  mountPath: /etc/mlrt/mlflow
  readOnly: true
{{- end }}
{{- end -}}
{{- define "mlrt.mlflowVolumes" -}}
{{- if include "mlrt.mlflowSecret" . }}
- name: mlflow-account
  secret:
    secretName: {{ include "mlrt.mlflowSecret" . }}
    items:
      - {key: username, path: username}
      - {key: password, path: password}
{{- end }}
{{- end -}}

{{/* The table catalog (values catalog): the metastore's URI, its database's JDBC URL and the Secret with the account. */}}
{{- define "mlrt.metastoreUri" -}}{{ if .Values.catalog.enabled }}thrift://{{ include "mlrt.fullname" . }}-metastore:9083{{ end }}{{- end -}}
{{- define "mlrt.catalogBundled" -}}{{ if and .Values.catalog.enabled (not .Values.catalog.database.url) }}true{{ end }}{{- end -}}
{{- define "mlrt.catalogDbUrl" -}}
{{- .Values.catalog.database.url | default (printf "jdbc:postgresql://%s-catalog-db:5432/metastore" (include "mlrt.fullname" .)) -}}
{{- end -}}
{{- define "mlrt.catalogSecret" -}}
{{- .Values.catalog.database.existingSecret | default (printf "%s-catalog-db" (include "mlrt.fullname" .)) -}}
{{- end -}}
{{- define "mlrt.catalogCheck" -}}
{{- if and .Values.catalog.enabled .Values.catalog.database.url (not .Values.catalog.database.existingSecret) -}}
{{- fail "catalog.database.url names an external database: set catalog.database.existingSecret to a Secret with its account (keys username and password)" -}}
{{- end -}}
{{- end -}}

{{/* Cluster libraries (values libraries): the environment every pod running Spark's Python gets, its CA mount. */}}
{{- define "mlrt.librariesEnv" -}}
{{- $l := .Values.libraries -}}
{{- if $l.packages }}
- name: MLRT_LIBRARIES
  value: {{ join " " $l.packages | quote }}
- name: MLRT_LIBRARIES_DIR
  value: {{ if .Values.lake.enabled }}/opt/mlrt/lake/.mlrt-libraries{{ else }}/tmp/mlrt-libraries{{ end }}
{{- end }}
{{- with $l.wheelhouse }}
- name: MLRT_LIBRARIES_WHEELHOUSE
  value: {{ . | quote }}
{{- end }}
{{- with $l.indexUrl }}
- name: MLRT_PIP_INDEX_URL
  value: {{ . | quote }}
{{- end }}
{{- with $l.extraIndexUrl }}
- name: MLRT_PIP_EXTRA_INDEX_URL
  value: {{ . | quote }}
{{- end }}
{{- if $l.caBundleConfigMap }}
- name: MLRT_PIP_CA_BUNDLE
  value: /etc/mlrt/pip-ca/ca.pem
{{- end }}
{{- end -}}
{{- define "mlrt.librariesMounts" -}}
{{- if .Values.libraries.caBundleConfigMap }}
- name: pip-ca
  mountPath: /etc/mlrt/pip-ca
  readOnly: true
{{- end }}
{{- end -}}
{{- define "mlrt.librariesVolumes" -}}
{{- with .Values.libraries.caBundleConfigMap }}
- name: pip-ca
  configMap:
    name: {{ . }}
    items: [{key: ca.pem, path: ca.pem}]
{{- end }}
{{- end -}}

{{/* Jobs (values jobs): the ConfigMap with their definitions, a job's CronJob (names are at most 52 characters). */}}
{{- define "mlrt.jobsConfigMap" -}}{{ include "mlrt.fullname" . }}-jobs{{- end -}}
{{- define "mlrt.jobCronJob" -}}{{ printf "%s-job-%s" (include "mlrt.fullname" .root) .name | trunc 52 | trimSuffix "-" }}{{- end -}}

{{/* dbutils.secrets scopes (values secretScopes): each Secret mounted at /opt/mlrt/secrets/<name>. */}}
{{- define "mlrt.secretScopeMounts" -}}
{{- range .Values.secretScopes }}
- name: scope-{{ . | replace "." "-" | trunc 50 }}
  mountPath: /opt/mlrt/secrets/{{ . }}
  readOnly: true
{{- end }}
{{- end -}}
{{- define "mlrt.secretScopeVolumes" -}}
{{- range .Values.secretScopes }}
- name: scope-{{ . | replace "." "-" | trunc 50 }}
  secret:
    secretName: {{ . }}
    # a scope whose Secret is not there (yet) is an absent scope (dbutils names it), not a pod kept pending
    optional: true
{{- end }}
{{- end -}}
{{- define "mlrt.hubUserServiceAccount" -}}{{ include "mlrt.fullname" . }}-hub-user{{- end -}}
{{- define "mlrt.hubSecret" -}}{{ .Values.hub.auth.existingSecret | default (printf "%s-hub" (include "mlrt.fullname" .)) }}{{- end -}}
{{- define "mlrt.hubService" -}}{{ include "mlrt.fullname" . }}-hub{{- end -}}
{{- define "mlrt.hubProxyService" -}}{{ include "mlrt.fullname" . }}-hub-public{{- end -}}

{{/* What every Spark driver pod of the release mounts (JupyterLab, job pods, hub users' servers): scratch space, the
release's Spark defaults and executor pod template, the event log, the lake, the object store's key pair, the
cluster libraries and the dbutils secret scopes. The Spark RPC secret and the MLflow account are each pod's to add:
the release's, or a hub user's own. */}}
{{- define "mlrt.driverVolumes" -}}
{{ include "mlrt.tmpVolumes" . }}
- name: spark-conf
  configMap:
    name: {{ include "mlrt.sparkConfigMap" . }}
- name: spark-events
  persistentVolumeClaim:
    claimName: {{ include "mlrt.eventLogClaim" . }}
{{- if .Values.lake.enabled }}
- name: lake
  persistentVolumeClaim:
    claimName: {{ include "mlrt.fullname" . }}-lake
{{- end }}
{{- include "mlrt.s3Volumes" . | nindent 0 }}
{{- include "mlrt.librariesVolumes" . | nindent 0 }}
{{- include "mlrt.secretScopeVolumes" . | nindent 0 }}
{{- end -}}
{{- define "mlrt.driverMounts" -}}
{{ include "mlrt.tmpMounts" . }}
- name: spark-conf
  mountPath: /etc/mlrt/spark
  readOnly: true
- name: spark-events
  mountPath: /opt/mlrt/spark-events
{{- if .Values.lake.enabled }}
# the lake volume: managed tables on it, and the cluster libraries' shared install
- name: lake
  mountPath: /opt/mlrt/lake
{{- end }}
{{- include "mlrt.s3Mounts" . | nindent 0 }}
{{- include "mlrt.librariesMounts" . | nindent 0 }}
{{- include "mlrt.secretScopeMounts" . | nindent 0 }}
{{- end -}}
