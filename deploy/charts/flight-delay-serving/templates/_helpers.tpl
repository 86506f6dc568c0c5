{{/* Chart name, truncated to the 63-character label limit. */}}
{{- define "fds.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Release-scoped full name. */}}
{{- define "fds.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "fds.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "fds.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Service selector: shared by both tracks, so one Service load-balances over stable and canary pods. */}}
{{- define "fds.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fds.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "fds.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "fds.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mlops-assets
{{- end -}}

{{/* Image reference: a digest, when given, pins the exact image and wins over the tag. A malformed digest fails the
render rather than producing a reference no registry resolves (an image id or a tag passed as the digest). */}}
{{- define "fds.image" -}}
{{- if or (contains "@" .repository) (regexMatch ":[^/]*$" .repository) -}}
{{- fail (printf "image.repository %q must be a repository without a tag or digest (put those in image.tag / image.digest)" .repository) -}}
{{- end -}}
{{- if .digest -}}
{{- if not (regexMatch "^sha256:[a-f0-9]{64}$" .digest) -}}
{{- fail (printf "image.digest %q is not a registry digest sha256:<64 hex>: use the part after '@' of the bento_image asset's repo_digest" .digest) -}}
{{- end -}}
{{- printf "%s@%s" .repository .digest -}}
{{- else -}}
{{- printf "%s:%s" .repository (required "image.tag or image.digest is required" .tag) -}}
{{- end -}}
{{- end -}}

{{/* Model version as a label value: label values allow [A-Za-z0-9_.-] only. */}}
{{- define "fds.modelVersionLabel" -}}
{{- regexReplaceAll "[^A-Za-z0-9_.-]" (toString .) "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}
