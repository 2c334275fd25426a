{{- /* The release's Spark defaults (the ConfigMap's spark-defaults.conf). hubUser: the defaults a hub user's
   server starts from (the hub adds each user's own lines: their pod, executor names, label and Secrets). */ -}}
{{- define "mlrt.sparkDefaults" -}}
{{- $hubUser := .hubUser -}}
{{- with .root -}}
{{- $fullname := include "mlrt.fullname" . -}}
{{- $e := .Values.spark.executor -}}
{{- .Files.Get "files/spark-defaults.conf" }}

# ---- Kubernetes (this release) ----
spark.master                                     k8s://https://kubernetes.default.svc:443
spark.submit.deployMode                          client
spark.kubernetes.namespace                       {{ .Release.Namespace }}
spark.kubernetes.container.image                 {{ include "mlrt.image" (dict "root" . "name" "ml") }}
spark.kubernetes.container.image.pullPolicy      {{ .Values.image.pullPolicy }}
spark.kubernetes.authenticate.driver.serviceAccountName {{ if $hubUser }}{{ include "mlrt.hubUserServiceAccount" . }}{{ else }}{{ include "mlrt.serviceAccount" . }}{{ end }}
{{- if not $hubUser }}
spark.kubernetes.driver.pod.name                 {{ $fullname }}-jupyter-0
spark.driver.host                                {{ include "mlrt.driverService" . }}.{{ .Release.Namespace }}.svc
{{- end }}
spark.kubernetes.executor.podTemplateFile        /etc/mlrt/spark/executor-pod-template.yaml
{{- if not $hubUser }}
spark.kubernetes.executor.podNamePrefix          {{ $fullname }}-exec
spark.kubernetes.executor.secrets.{{ include "mlrt.sparkAuthSecret" . }} /etc/mlrt/spark-auth
{{- end }}
spark.authenticate.secret.file                   /etc/mlrt/spark-auth/secret
spark.executor.instances                         {{ $e.instances }}
spark.executor.cores                             {{ $e.cores }}
spark.executor.memory                            {{ $e.memory }}
spark.executor.memoryOverhead                    {{ $e.memoryOverhead }}
{{- if .Values.mlflow.enabled }}
spark.executorEnv.MLFLOW_TRACKING_URI            http://{{ $fullname }}-mlflow:5000
{{- end }}
{{- if not $hubUser }}
{{- with include "mlrt.mlflowSecret" . }}
# MLflow's account: mounted from its Secret into executor (and cluster-mode driver) pods; the entrypoint writes
# ~/.mlflow/credentials from it. Never a Spark property or an environment variable.
spark.kubernetes.executor.secrets.{{ . }} /etc/mlrt/mlflow
spark.executorEnv.MLRT_MLFLOW_CREDENTIALS_DIR    /etc/mlrt/mlflow
spark.kubernetes.driver.secrets.{{ . }} /etc/mlrt/mlflow
spark.kubernetes.driverEnv.MLRT_MLFLOW_CREDENTIALS_DIR /etc/mlrt/mlflow
{{- end }}
{{- end }}
{{- if include "mlrt.s3Enabled" . }}
# Object storage (objectStore): s3a:// and the warehouse for every driver of the release, submitted ones too.
{{- with include "mlrt.s3Endpoint" . }}
spark.hadoop.fs.s3a.endpoint                     {{ . }}
spark.hadoop.fs.s3a.path.style.access            true
{{- end }}
spark.hadoop.fs.s3a.endpoint.region              {{ .Values.objectStore.external.region }}
spark.sql.warehouse.dir                          s3a://{{ .Values.objectStore.buckets.lake }}/warehouse
{{- end }}
{{- if include "mlrt.s3Secret" . }}
# The object store's key pair: mounted from its Secret into executor (and cluster-mode driver) pods, turned
# into AWS_* environment variables by the entrypoint; never a Spark property.
spark.kubernetes.executor.secrets.{{ include "mlrt.s3Secret" . }} /etc/mlrt/s3
spark.executorEnv.MLRT_S3_CREDENTIALS_DIR        /etc/mlrt/s3
spark.kubernetes.driver.secrets.{{ include "mlrt.s3Secret" . }} /etc/mlrt/s3
spark.kubernetes.driverEnv.MLRT_S3_CREDENTIALS_DIR /etc/mlrt/s3
{{- end }}
{{- with include "mlrt.metastoreUri" . }}
# The release's table catalog (catalog): every driver, submitted ones too, sees the same tables by name.
spark.sql.catalogImplementation                  hive
spark.hadoop.hive.metastore.uris                 {{ . }}
{{- end }}
{{- with .Values.libraries }}
{{- if .packages }}
# Cluster libraries (libraries): a cluster-mode driver installs them at start too (its executors: the template).
spark.kubernetes.driverEnv.MLRT_LIBRARIES       {{ join " " .packages }}
{{- end }}
{{- with .wheelhouse }}
spark.kubernetes.driverEnv.MLRT_LIBRARIES_WHEELHOUSE {{ . }}
{{- end }}
{{- with .indexUrl }}
spark.kubernetes.driverEnv.MLRT_PIP_INDEX_URL   {{ . }}
{{- end }}
{{- with .extraIndexUrl }}
spark.kubernetes.driverEnv.MLRT_PIP_EXTRA_INDEX_URL {{ . }}
{{- end }}
{{- end }}
{{- with .Values.spark.mavenRepositories }}
# A cluster-mode driver resolves --packages again, from the same repositories as its client.
spark.kubernetes.driverEnv.MLRT_MAVEN_REPOSITORIES {{ join "," . }}
{{- end }}
{{- if include "mlrt.webIdentity" . }}
# Web identity: executors run as the annotated ServiceAccount (its projected token is their credential).
spark.kubernetes.authenticate.executor.serviceAccountName {{ include "mlrt.s3ServiceAccount" . }}
{{- end }}
{{- if .Values.spark.dynamicAllocation.enabled }}
spark.dynamicAllocation.enabled                  true
spark.dynamicAllocation.shuffleTracking.enabled  true
spark.dynamicAllocation.minExecutors             {{ .Values.spark.dynamicAllocation.minExecutors }}
spark.dynamicAllocation.maxExecutors             {{ .Values.spark.dynamicAllocation.maxExecutors }}
{{- end }}
{{- if gt (int $e.gpus) 0 }}
spark.executor.resource.gpu.amount               {{ $e.gpus }}
spark.executor.resource.gpu.vendor               nvidia.com
spark.executor.resource.gpu.discoveryScript      /opt/mlrt/bin/mlrt-gpu-discovery
spark.task.resource.gpu.amount                   1
{{- end }}
{{- range $key, $value := .Values.spark.conf }}
{{ $key }} {{ $value }}
{{- end }}
{{- end -}}
{{- end -}}
