{{/* The release's full name: the release name when it already contains the chart name. */}}
{{- define "vdi.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "vdi.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "vdi.labels" -}}
{{ include "vdi.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: vdi-operator
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Cluster-wide objects shared with deploy/rbac carry only the part-of label there; the chart adds its own. */}}
{{- define "vdi.sharedLabels" -}}
app.kubernetes.io/part-of: vdi-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "vdi.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "vdi.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "vdi.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/*
Where Traefik (forwardAuth) and the desktops (TURN) reach the API. A reconciler-only release serves neither, so
its own Service is never right there: the value must name the API release's.
*/}}
{{- define "vdi.internalUrl" -}}
{{- if eq .Values.mode "reconciler" -}}
{{- required (printf "desktops.internalUrl is required with mode: reconciler: set it to the API release's Service, where forwardAuth and TURN are served, e.g. http://<api-release>-vdi-operator.%s.svc:%d" .Release.Namespace (int .Values.service.port)) .Values.desktops.internalUrl -}}
{{- else -}}
{{- default (printf "http://%s.%s.svc:%d" (include "vdi.fullname" .) .Release.Namespace (int .Values.service.port)) .Values.desktops.internalUrl -}}
{{- end -}}
{{- end -}}

{{/*
Whether this release installs one of the cluster-wide objects (user roles, admission policy, default template),
given its value (list <value> .): as set, else (null) unless mode is reconciler. Cluster-scoped names clash
between releases, so of an API and a reconciler release only the API's installs them.
*/}}
{{- define "vdi.installsClusterWide" -}}
{{- $value := index . 0 -}}
{{- $root := index . 1 -}}
{{- if kindIs "invalid" $value | ternary (ne $root.Values.mode "reconciler") $value -}}true{{- end -}}
{{- end -}}

{{/*
The portal's one host: the IngressRoute, the Ingress and VDI_PUBLIC_URL (the OIDC callback) must agree on it, so
two different hosts in portal.ingressRoute and portal.ingress are refused rather than one silently winning.
*/}}
{{- define "vdi.portalHost" -}}
{{- $route := .Values.portal.ingressRoute.host -}}
{{- $ingress := .Values.portal.ingress.host -}}
{{- if and $route $ingress (ne $route $ingress) -}}
{{- fail (printf "portal.ingressRoute.host (%s) and portal.ingress.host (%s) differ: the portal has one host; set one of them, or both alike" $route $ingress) -}}
{{- end -}}
{{- default .Values.desktops.domain (default $route $ingress) -}}
{{- end -}}

{{/* The user ClusterRole the service binds in each user namespace (VDI_USER_CLUSTERROLE). */}}
{{- define "vdi.userClusterRole" -}}vdi-user{{- end -}}

{{/* Labels as the service reads them from the environment: key=value pairs joined by commas, in key order. */}}
{{- define "vdi.labelList" -}}
{{- $pairs := list -}}
{{- range $key, $value := . -}}
{{- $pairs = append $pairs (printf "%s=%s" $key $value) -}}
{{- end -}}
{{- join "," $pairs -}}
{{- end -}}

{{/* The class of home PVCs: desktops.storageClassName, else the chart's Retain class unless it is disabled. */}}
{{- define "vdi.homeStorageClassName" -}}
{{- $d := .Values.desktops -}}
{{- if $d.storageClassName -}}
{{- $d.storageClassName -}}
{{- else if not (eq (toString $d.homeStorageClass.enabled) "false") -}}
{{- $d.homeStorageClass.name -}}
{{- end -}}
{{- end -}}
