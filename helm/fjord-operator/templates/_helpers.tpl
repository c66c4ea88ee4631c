{{- define "fjord-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fjord-operator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "fjord-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "fjord-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "fjord-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The rules the operator needs on StreamJobs and their children; nothing on Secrets. */}}
{{- define "fjord-operator.rules" -}}
- apiGroups: ["fjord.dev"]
  resources: ["streamjobs"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["fjord.dev"]
  resources: ["streamjobs/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["fjord.dev"]
  resources: ["streamjobs/finalizers"]
  verbs: ["update"]
# StreamJobSnapshots: the operator creates one per savepoint, takes the savepoints users ask
# for, deletes the ones whose savepoint retention disposed of, and holds a finalizer on those
# with spec.disposeOnDelete.
- apiGroups: ["fjord.dev"]
  resources: ["streamjobsnapshots"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: ["fjord.dev"]
  resources: ["streamjobsnapshots/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["fjord.dev"]
  resources: ["streamjobsnapshots/finalizers"]
  verbs: ["update"]
# Session clusters: StreamClusters (JobManager and TaskManagers without a job of their own) and
# the StreamSessionJobs submitted to them.
- apiGroups: ["fjord.dev"]
  resources: ["streamclusters", "streamsessionjobs"]
  verbs: ["get", "list", "watch", "patch", "update"]
- apiGroups: ["fjord.dev"]
  resources: ["streamclusters/status", "streamsessionjobs/status"]
  verbs: ["get", "patch", "update"]
- apiGroups: ["fjord.dev"]
  resources: ["streamclusters/finalizers", "streamsessionjobs/finalizers"]
  verbs: ["update"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
- apiGroups: [""]
  resources: ["services", "configmaps"]
  verbs: ["get", "list", "watch", "create", "patch", "update", "delete"]
# spec.security: the StreamJob's CA, its TLS certificate and its REST token, which the operator
# creates (owned by the StreamJob), re-issues before expiry and reads to call the REST API.
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "create", "patch", "update"]
# The REST Ingress of spec.ingress.
- apiGroups: ["networking.k8s.io"]
  resources: ["ingresses"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
# Read-only: why a JobManager or TaskManager Pod does not run (image pull errors, crash loops
# with their last log lines, unschedulable Pods), reported on the StreamJob within seconds.
- apiGroups: [""]
  resources: ["pods", "events"]
  verbs: ["get", "list", "watch"]
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
# A rescale in place marks the TaskManager Pods its job runs on with a deletion cost
# (controller.kubernetes.io/pod-deletion-cost) before the TaskManagers scale down, so idle
# ones go first.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["patch"]
# JobManager high availability (spec.jobManager.highAvailability): per StreamJob a
# ServiceAccount, and a Role with its RoleBinding that let the JobManagers hold their leader
# Lease and label their own Pod. RBAC lets the operator grant only what it holds itself, hence
# the leases rule (pods get/patch are above).
- apiGroups: [""]
  resources: ["serviceaccounts"]
  verbs: ["get", "create", "patch"]
- apiGroups: ["rbac.authorization.k8s.io"]
  resources: ["roles", "rolebindings"]
  verbs: ["get", "create", "patch"]
- apiGroups: ["coordination.k8s.io"]
  resources: ["leases"]
  verbs: ["get", "create", "update"]
{{- end -}}
