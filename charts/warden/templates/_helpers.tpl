{{/*
Labels Helm adds to every object, on top of the labels manifests/base gives it (test/chart
removes exactly these when it compares the chart with kustomize).
*/}}
{{- define "warden.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* The webhook's objects: its name, then Helm's labels. */}}
{{- define "warden.labels" -}}
app.kubernetes.io/name: warden-webhook
app.kubernetes.io/part-of: warden
{{ include "warden.helmLabels" . }}
{{- end -}}

{{/* Objects that belong to Warden but not to the webhook Deployment. */}}
{{- define "warden.partOfLabels" -}}
app.kubernetes.io/part-of: warden
{{ include "warden.helmLabels" . }}
{{- end -}}

{{- define "warden.selectorLabels" -}}
app.kubernetes.io/name: warden-webhook
{{- end -}}

{{- define "warden.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ $tag }}
{{- end -}}
{{- end -}}

{{- define "warden.sidecarImage" -}}
{{ .Values.sidecar.image.repository }}:{{ .Values.sidecar.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{- define "warden.serviceHost" -}}
warden-webhook.{{ .Release.Namespace }}.svc
{{- end -}}

{{/* The namespaces neither webhook is ever called for. */}}
{{- define "warden.neverCalled" -}}
{{- $ns := list "kube-system" "kube-public" "kube-node-lease" .Release.Namespace -}}
{{- range .Values.exemptNamespaces }}{{ if not (has . $ns) }}{{ $ns = append $ns . }}{{ end }}{{ end -}}
{{ toJson $ns }}
{{- end -}}

{{/* The policy ConfigMap the Deployment mounts (empty without a policy file). */}}
{{- define "warden.policyConfigMap" -}}
{{- if eq .Values.policy.source "inline" -}}
warden-policy
{{- else if eq .Values.policy.source "configMap" -}}
{{- required "policy.configMap.name is required with policy.source=configMap" .Values.policy.configMap.name -}}
{{- end -}}
{{- end -}}

{{/*
The generated CA and serving certificate (certificates.mode=generate), computed once per render
and cached in .Values so the Secrets and both webhook configurations agree. On upgrade the
Secrets in the cluster are reused: the CA always (pods that are running verify the broker with
it), the serving certificate unless certificates.generate.rotation differs from the one it was
signed for (annotation warden.dev/rotation on its Secret).
*/}}
{{- define "warden.generatedCerts" -}}
{{- if not (hasKey .Values "__wardenCerts") -}}
{{- $ns := .Release.Namespace -}}
{{- $g := .Values.certificates.generate -}}
{{- $caSecret := lookup "v1" "Secret" $ns "warden-webhook-ca" -}}
{{- $tlsSecret := lookup "v1" "Secret" $ns "warden-webhook-tls" -}}
{{- $ca := dict -}}
{{- $caCrt := "" -}}
{{- if and $caSecret $caSecret.data (index $caSecret.data "tls.crt") (index $caSecret.data "tls.key") -}}
{{- $ca = buildCustomCert (index $caSecret.data "tls.crt") (index $caSecret.data "tls.key") -}}
{{- else -}}
{{- $ca = genCA "warden-webhook-ca" (int $g.caValidityDays) -}}
{{- end -}}
{{- $crt := "" -}}
{{- $key := "" -}}
{{- $rotation := toString $g.rotation -}}
{{- $signedFor := "" -}}
{{- if and $tlsSecret $tlsSecret.metadata $tlsSecret.metadata.annotations -}}
{{- $signedFor = index $tlsSecret.metadata.annotations "warden.dev/rotation" | default "" -}}
{{- end -}}
{{- if and $caSecret $tlsSecret $tlsSecret.data (index $tlsSecret.data "tls.crt") (index $tlsSecret.data "tls.key") (eq $rotation $signedFor) -}}
{{- $crt = index $tlsSecret.data "tls.crt" | b64dec -}}
{{- $key = index $tlsSecret.data "tls.key" | b64dec -}}
{{- else -}}
{{- $host := include "warden.serviceHost" . -}}
{{- $cert := genSignedCert $host nil (list $host (printf "%s.cluster.local" $host)) (int $g.validityDays) $ca -}}
{{- $crt = $cert.Cert -}}
{{- $key = $cert.Key -}}
{{- end -}}
{{- $_ := set .Values "__wardenCerts" (dict "caCert" $ca.Cert "caKey" $ca.Key "cert" $crt "key" $key) -}}
{{- end -}}
{{- end -}}

{{/* The caBundle (base64) of both webhook configurations, where the chart knows it. */}}
{{- define "warden.caBundle" -}}
{{- if eq .Values.certificates.mode "generate" -}}
{{- include "warden.generatedCerts" . -}}
{{- index .Values "__wardenCerts" "caCert" | b64enc -}}
{{- else if and (eq .Values.certificates.mode "none") .Values.certificates.caBundle -}}
{{- .Values.certificates.caBundle | b64enc -}}
{{- end -}}
{{- end -}}

{{/* Values checked before anything renders. */}}
{{- define "warden.validate" -}}
{{- if not (has .Values.policy.source (list "inline" "configMap" "none")) -}}
{{- fail (printf "policy.source must be inline, configMap or none, not %q" .Values.policy.source) -}}
{{- end -}}
{{- if and (eq .Values.policy.source "none") (not .Values.policy.objects) -}}
{{- fail "policy.source=none needs policy.objects=true: Warden would have no policy at all" -}}
{{- end -}}
{{- if not (has .Values.certificates.mode (list "generate" "cert-manager" "none")) -}}
{{- fail (printf "certificates.mode must be generate, cert-manager or none, not %q" .Values.certificates.mode) -}}
{{- end -}}
{{- if not (has .Values.broker.grants (list "policy" "rbac")) -}}
{{- fail (printf "broker.grants must be policy or rbac, not %q" .Values.broker.grants) -}}
{{- end -}}
{{- end -}}
