{{- /* Where a Spark driver of the release may connect: the API server (its executor pods), its executors, MLflow,
   the metastore, the history server and JupyterLab (jobs read notebooks there). */ -}}
{{- define "mlrt.driverEgress" -}}
- to:
    - ipBlock: {cidr: {{ .Values.networkPolicy.apiServerCIDR }}}
  ports:
    - {port: 443}
    - {port: 6443}
- to:
    - podSelector:
        matchLabels: {{- include "mlrt.selector" (dict "root" . "component" "executor") | nindent 10 }}
- to:
    - podSelector:
        matchLabels: {{- include "mlrt.selector" (dict "root" . "component" "mlflow") | nindent 10 }}
  ports:
    - {port: 5000}
{{- if .Values.catalog.enabled }}
- to:
    - podSelector:
        matchLabels: {{- include "mlrt.selector" (dict "root" . "component" "metastore") | nindent 10 }}
  ports:
    - {port: 9083}
{{- end }}
- to:
    - podSelector:
        matchLabels: {{- include "mlrt.selector" (dict "root" . "component" "history") | nindent 10 }}
    - podSelector:
        matchLabels: {{- include "mlrt.selector" (dict "root" . "component" "jupyter") | nindent 10 }}
  ports:
    - {port: 18080}
    - {port: 8888}
{{- end -}}
