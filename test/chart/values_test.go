package chart

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"
)

// A value case: values set (a values file's content and/or --set), and what the render must then
// show.
type valueCase struct {
	name   string
	values string   // YAML, like a -f file
	set    []string // --set, applied after values
	check  func(t *testing.T, objs []object)
}

func podSpec(t *testing.T, objs []object) map[string]any {
	return dig(find(t, objs, "Deployment", "warden-webhook"), "spec", "template", "spec").(map[string]any)
}

func container(t *testing.T, objs []object) map[string]any {
	return dig(podSpec(t, objs), "containers", 0).(map[string]any)
}

func webhookConfigs(t *testing.T, objs []object) []object {
	return []object{find(t, objs, "MutatingWebhookConfiguration", "warden"), find(t, objs, "ValidatingWebhookConfiguration", "warden")}
}

func hasArg(t *testing.T, objs []object, arg string) {
	t.Helper()
	assert.Contains(t, containerArgs(t, objs), arg)
}

// storageEndpointFlags are the webhook flags of storage.endpoints (the other storage flags start
// with --storage).
var storageEndpointFlags = []string{"--gcp-credentials-endpoint", "--gcp-sts-endpoint", "--gcp-storage-endpoint", "--gcp-pubsub-endpoint", "--gcp-storage-insecure"}

// flagName is an argument's flag without its value.
func flagName(arg string) string {
	name, _, _ := strings.Cut(arg, "=")
	return name
}

func parseCert(t *testing.T, b64 string) *x509.Certificate {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	require.NoError(t, err)
	block, _ := pem.Decode(raw)
	require.NotNil(t, block)
	c, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	return c
}

var valueCases = []valueCase{
	{name: "monitoring.enabled", set: []string{"monitoring.enabled=true"}, check: func(t *testing.T, objs []object) {
		find(t, objs, "PrometheusRule", "warden")
		find(t, objs, "PodMonitor", "warden-sidecars")
	}},
	{name: "namespace.create", set: []string{"namespace.create=true"}, check: func(t *testing.T, objs []object) {
		ns := find(t, objs, "Namespace", releaseNamespace)
		assert.Equal(t, "restricted", dig(ns, "metadata", "labels", "pod-security.kubernetes.io/enforce"))
	}},
	{name: "image", set: []string{"image.repository=registry.example/warden/webhook", "image.tag=v9.9.9", "image.pullPolicy=Always"}, check: func(t *testing.T, objs []object) {
		c := container(t, objs)
		assert.Equal(t, "registry.example/warden/webhook:v9.9.9", c["image"])
		assert.Equal(t, "Always", c["imagePullPolicy"])
	}},
	{name: "image.digest", set: []string{"image.digest=sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}, check: func(t *testing.T, objs []object) {
		assert.Equal(t, "ghcr.io/warden-dev/warden-webhook@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef", container(t, objs)["image"])
	}},
	{name: "imagePullSecrets", set: []string{"imagePullSecrets[0].name=regcred"}, check: func(t *testing.T, objs []object) {
		assert.Equal(t, []any{map[string]any{"name": "regcred"}}, podSpec(t, objs)["imagePullSecrets"])
	}},
	{name: "replicas", set: []string{"replicas=5"}, check: func(t *testing.T, objs []object) {
		assert.Equal(t, float64(5), dig(find(t, objs, "Deployment", "warden-webhook"), "spec", "replicas"))
	}},
	{name: "podDisruptionBudget.minAvailable", set: []string{"podDisruptionBudget.minAvailable=2"}, check: func(t *testing.T, objs []object) {
		assert.Equal(t, float64(2), dig(find(t, objs, "PodDisruptionBudget", "warden-webhook"), "spec", "minAvailable"))
	}},
	{name: "podDisruptionBudget.enabled", set: []string{"podDisruptionBudget.enabled=false"}, check: func(t *testing.T, objs []object) {
		assert.False(t, has(objs, "PodDisruptionBudget", "warden-webhook"))
	}},
	{name: "resources", values: "resources: {requests: {cpu: 200m, memory: 100Mi}, limits: {cpu: '2', memory: 1Gi}}", check: func(t *testing.T, objs []object) {
		assert.Equal(t, map[string]any{"requests": map[string]any{"cpu": "200m", "memory": "100Mi"}, "limits": map[string]any{"cpu": "2", "memory": "1Gi"}}, container(t, objs)["resources"])
	}},
	{name: "scheduling", values: `
nodeSelector: {pool: system}
tolerations: [{key: dedicated, operator: Equal, value: system, effect: NoSchedule}]
priorityClassName: system-cluster-critical
podAnnotations: {example.com/team: platform}
podLabels: {example.com/tier: control}
`, check: func(t *testing.T, objs []object) {
		p := podSpec(t, objs)
		assert.Equal(t, map[string]any{"pool": "system"}, p["nodeSelector"])
		assert.Equal(t, []any{map[string]any{"key": "dedicated", "operator": "Equal", "value": "system", "effect": "NoSchedule"}}, p["tolerations"])
		assert.Equal(t, "system-cluster-critical", p["priorityClassName"])
		d := find(t, objs, "Deployment", "warden-webhook")
		assert.Equal(t, "platform", dig(d, "spec", "template", "metadata", "annotations", "example.com/team"))
		assert.Equal(t, "control", dig(d, "spec", "template", "metadata", "labels", "example.com/tier"))
		assert.Equal(t, map[string]any{"app.kubernetes.io/name": "warden-webhook"}, dig(d, "spec", "selector", "matchLabels"), "the selector stays")
	}},
	{name: "serviceAccount.annotations", set: []string{"serviceAccount.annotations.example\\.com/owner=platform"}, check: func(t *testing.T, objs []object) {
		assert.Equal(t, map[string]any{"example.com/owner": "platform"}, dig(find(t, objs, "ServiceAccount", "warden-webhook"), "metadata", "annotations"))
	}},
	{name: "policy.inline", values: "policy:\n  inline: |\n    owners:\n      - serviceAccount: team/app\n        environment: dev\n", check: func(t *testing.T, objs []object) {
		cm := find(t, objs, "ConfigMap", "warden-policy")
		assert.Equal(t, "owners:\n  - serviceAccount: team/app\n    environment: dev\n", dig(cm, "data", "policy.yaml"))
		hasArg(t, objs, "--policy=/etc/warden/policy/policy.yaml")
	}},
	{name: "policy.source=configMap", set: []string{"policy.source=configMap", "policy.configMap.name=platform-policy"}, check: func(t *testing.T, objs []object) {
		assert.False(t, has(objs, "ConfigMap", "warden-policy"), "the chart does not make the ConfigMap")
		hasArg(t, objs, "--policy=/etc/warden/policy/policy.yaml")
		hasArg(t, objs, "--policy-configmap=platform-policy")
		assert.Contains(t, podSpec(t, objs)["volumes"], map[string]any{"name": "policy", "configMap": map[string]any{"name": "platform-policy"}})
	}},
	{name: "policy.source=none", set: []string{"policy.source=none"}, check: func(t *testing.T, objs []object) {
		assert.False(t, has(objs, "ConfigMap", "warden-policy"))
		hasArg(t, objs, "--policy=")
		for _, v := range podSpec(t, objs)["volumes"].([]any) {
			assert.NotEqual(t, "policy", v.(map[string]any)["name"])
		}
		for _, m := range container(t, objs)["volumeMounts"].([]any) {
			assert.NotEqual(t, "policy", m.(map[string]any)["name"])
		}
	}},
	{name: "policy.objects", set: []string{"policy.objects=false"}, check: func(t *testing.T, objs []object) {
		hasArg(t, objs, "--policy-objects=false")
	}},
	{name: "certificates.generate validity", set: []string{"certificates.generate.validityDays=30", "certificates.generate.caValidityDays=400"}, check: func(t *testing.T, objs []object) {
		tls := find(t, objs, "Secret", "warden-webhook-tls")
		assert.WithinDuration(t, time.Now().AddDate(0, 0, 30), parseCert(t, dig(tls, "data", "tls.crt").(string)).NotAfter, 48*time.Hour)
		assert.WithinDuration(t, time.Now().AddDate(0, 0, 400), parseCert(t, dig(tls, "data", "ca.crt").(string)).NotAfter, 48*time.Hour)
	}},
	// What rotation does on upgrade is proven against a real API server:
	// TestInstallAndUpgradeKeepCertificates.
	{name: "certificates.generate.rotation", set: []string{"certificates.generate.rotation=2027-01"}, check: func(t *testing.T, objs []object) {
		assert.Equal(t, "2027-01", dig(find(t, objs, "Secret", "warden-webhook-tls"), "metadata", "annotations", "warden.dev/rotation"))
	}},
	{name: "certificates.mode=cert-manager", set: []string{"certificates.mode=cert-manager", "certificates.certManager.duration=720h", "certificates.certManager.renewBefore=240h"}, check: func(t *testing.T, objs []object) {
		assert.False(t, has(objs, "Secret", "warden-webhook-tls"))
		cert := find(t, objs, "Certificate", "warden-webhook-tls")
		assert.Equal(t, "720h", dig(cert, "spec", "duration"))
		assert.Equal(t, "240h", dig(cert, "spec", "renewBefore"))
		for _, w := range webhookConfigs(t, objs) {
			assert.Equal(t, "warden-system/warden-webhook-tls", dig(w, "metadata", "annotations", "cert-manager.io/inject-ca-from"))
			assert.Nil(t, dig(w, "webhooks", 0, "clientConfig", "caBundle"))
		}
	}},
	{name: "certificates.certManager.issuerRef", set: []string{"certificates.mode=cert-manager", "certificates.certManager.issuerRef.kind=ClusterIssuer", "certificates.certManager.issuerRef.name=corp-ca"}, check: func(t *testing.T, objs []object) {
		cert := find(t, objs, "Certificate", "warden-webhook-tls")
		assert.Equal(t, map[string]any{"kind": "ClusterIssuer", "name": "corp-ca"}, dig(cert, "spec", "issuerRef"))
		assert.False(t, has(objs, "Issuer", "warden-ca"), "no CA of Warden's own")
		assert.False(t, has(objs, "Certificate", "warden-ca"))
	}},
	{name: "certificates.mode=none", set: []string{"certificates.mode=none"}, check: func(t *testing.T, objs []object) {
		assert.False(t, has(objs, "Secret", "warden-webhook-tls"))
		assert.False(t, has(objs, "Secret", "warden-webhook-ca"))
		for _, w := range webhookConfigs(t, objs) {
			assert.Nil(t, dig(w, "webhooks", 0, "clientConfig", "caBundle"))
			assert.Nil(t, dig(w, "metadata", "annotations"))
		}
	}},
	{name: "certificates.caBundle", values: "certificates: {mode: none, caBundle: \"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n\"}", check: func(t *testing.T, objs []object) {
		want := base64.StdEncoding.EncodeToString([]byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"))
		for _, w := range webhookConfigs(t, objs) {
			assert.Equal(t, want, dig(w, "webhooks", 0, "clientConfig", "caBundle"))
		}
	}},
	{name: "webhook.timeoutSeconds", set: []string{"webhook.timeoutSeconds=10"}, check: func(t *testing.T, objs []object) {
		for _, w := range webhookConfigs(t, objs) {
			assert.Equal(t, float64(10), dig(w, "webhooks", 0, "timeoutSeconds"), w.kind())
		}
	}},
	{name: "exemptNamespaces", set: []string{"exemptNamespaces={monitoring,istio-system}"}, check: func(t *testing.T, objs []object) {
		hasArg(t, objs, "--exempt-namespaces=monitoring,istio-system")
		for _, w := range webhookConfigs(t, objs) {
			assert.Equal(t, []any{"kube-system", "kube-public", "kube-node-lease", "warden-system", "monitoring", "istio-system"},
				dig(w, "webhooks", 0, "namespaceSelector", "matchExpressions", 1, "values"), w.kind())
		}
	}},
	{name: "broker.grants", set: []string{"broker.grants=rbac"}, check: func(t *testing.T, objs []object) {
		hasArg(t, objs, "--broker-grants=rbac")
	}},
	{name: "broker.acceptTokens", set: []string{"broker.acceptTokens=true"}, check: func(t *testing.T, objs []object) {
		hasArg(t, objs, "--broker-accept-tokens")
	}},
	{name: "sidecar.identity", set: []string{"sidecar.identity=token"}, check: func(t *testing.T, objs []object) {
		hasArg(t, objs, "--sidecar-identity=token")
	}},
	{name: "sidecar.certificateLifetime", set: []string{"sidecar.certificateLifetime=6h"}, check: func(t *testing.T, objs []object) {
		hasArg(t, objs, "--sidecar-certificate-lifetime=6h")
	}},
	{name: "sidecar.metricsPort", set: []string{"sidecar.metricsPort=9464"}, check: func(t *testing.T, objs []object) {
		hasArg(t, objs, "--sidecar-metrics-port=9464")
	}},
	{name: "broker.url", set: []string{"broker.url=https://warden.example:8443"}, check: func(t *testing.T, objs []object) {
		hasArg(t, objs, "--broker-url=https://warden.example:8443")
	}},
	{name: "vault.address", set: []string{"vault.address=https://vault.vault.svc:8200"}, check: func(t *testing.T, objs []object) {
		hasArg(t, objs, "--vault-addr=https://vault.vault.svc:8200")
	}},
	{name: "vault.brokerRole", set: []string{"vault.address=https://vault.vault.svc:8200", "vault.brokerRole=warden-broker"}, check: func(t *testing.T, objs []object) {
		hasArg(t, objs, "--broker-vault-role=warden-broker")
		// The broker's Vault login: its own token, audience vault, at the flag's default path.
		assert.Contains(t, podSpec(t, objs)["volumes"], map[string]any{"name": "vault-token", "projected": map[string]any{"sources": []any{
			map[string]any{"serviceAccountToken": map[string]any{"path": "token", "audience": "vault", "expirationSeconds": float64(3600)}}}}})
		mounts := dig(podSpec(t, objs), "containers", 0, "volumeMounts")
		assert.Contains(t, mounts, map[string]any{"name": "vault-token", "mountPath": "/var/run/secrets/warden/vault", "readOnly": true})
	}},
	{name: "gcp", set: []string{"gcp.identity=true", "gcp.project=my-project", "gcp.adminGroup=warden-admins", "gcp.serviceAccount=warden@my-project.iam.gserviceaccount.com"}, check: func(t *testing.T, objs []object) {
		hasArg(t, objs, "--gcp-identity")
		hasArg(t, objs, "--gcp-project=my-project")
		hasArg(t, objs, "--admin-group=warden-admins")
		assert.Equal(t, "warden@my-project.iam.gserviceaccount.com",
			dig(find(t, objs, "ServiceAccount", "warden-webhook"), "metadata", "annotations", "iam.gke.io/gcp-service-account"))
	}},
	{name: "storage.enabled", set: []string{"storage.enabled=true"}, check: func(t *testing.T, objs []object) {
		hasArg(t, objs, "--storage")
		// The webhook's own defaults for the rest: no other storage flag.
		for _, a := range containerArgs(t, objs) {
			assert.False(t, strings.HasPrefix(a, "--storage-") || slices.Contains(storageEndpointFlags, flagName(a)), "%s without its value set", a)
		}
	}},
	// A values file, so maxCommitObjects is a float64 as Helm reads files: it must not render as 1e+06.
	{name: "storage lifetimes and commits", values: "storage: {enabled: true, readTTL: 45m, uploadTTL: 20m, deleteTTL: 900s, deleteRole: projects/my-project/roles/wardenObjectDeleter, cacheBuffer: 2m, maxCommitObjects: 1000000}", check: func(t *testing.T, objs []object) {
		for _, a := range []string{"--storage", "--storage-read-ttl=45m", "--storage-upload-ttl=20m", "--storage-delete-ttl=900s", "--storage-delete-role=projects/my-project/roles/wardenObjectDeleter", "--storage-cache-buffer=2m", "--storage-max-commit-objects=1000000"} {
			hasArg(t, objs, a)
		}
	}},
	{name: "storage.endpoints", set: []string{"storage.enabled=true", "storage.endpoints.credentials=iamcredentials.example:443", "storage.endpoints.sts=https://sts.example/v1/token",
		"storage.endpoints.storage=https://gcs.example/storage/v1/", "storage.endpoints.pubsub=pubsub.example:443", "storage.endpoints.insecure=true"}, check: func(t *testing.T, objs []object) {
		for _, a := range []string{"--gcp-credentials-endpoint=iamcredentials.example:443", "--gcp-sts-endpoint=https://sts.example/v1/token",
			"--gcp-storage-endpoint=https://gcs.example/storage/v1/", "--gcp-pubsub-endpoint=pubsub.example:443", "--gcp-storage-insecure"} {
			hasArg(t, objs, a)
		}
	}},
	// Storage values without storage.enabled: no flag at all (the webhook would ignore them).
	{name: "storage values need storage.enabled", values: "storage: {readTTL: 45m, maxCommitObjects: 5, endpoints: {sts: 'https://sts.example/v1/token', insecure: true}}", check: func(t *testing.T, objs []object) {
		for _, a := range containerArgs(t, objs) {
			assert.False(t, a == "--storage" || strings.HasPrefix(a, "--storage-") || slices.Contains(storageEndpointFlags, flagName(a)), "%s with storage.enabled=false", a)
		}
	}},
	{name: "sidecar.image", set: []string{"sidecar.image.repository=registry.example/sidecar", "sidecar.image.tag=v2", "sidecar.image.pullPolicy=IfNotPresent"}, check: func(t *testing.T, objs []object) {
		hasArg(t, objs, "--sidecar-image=registry.example/sidecar:v2")
		hasArg(t, objs, "--sidecar-image-pull-policy=IfNotPresent")
	}},
	{name: "sidecar.native", set: []string{"sidecar.native=false"}, check: func(t *testing.T, objs []object) {
		hasArg(t, objs, "--native-sidecar=false")
	}},
	{name: "sidecar.resources", values: "sidecar: {resources: {requests: {cpu: 20m, memory: 48Mi}, limits: {cpu: 500m, memory: 256Mi}}}", check: func(t *testing.T, objs []object) {
		for _, a := range []string{"--sidecar-cpu-request=20m", "--sidecar-memory-request=48Mi", "--sidecar-cpu-limit=500m", "--sidecar-memory-limit=256Mi"} {
			hasArg(t, objs, a)
		}
	}},
	{name: "volumes", set: []string{"volumes.allowHostPaths={/var/lib/scratch,/mnt/cache}", "volumes.allowInlineTypes={nfs}"}, check: func(t *testing.T, objs []object) {
		hasArg(t, objs, "--allow-host-path=/var/lib/scratch,/mnt/cache")
		hasArg(t, objs, "--allow-inline-volumes=nfs")
	}},
	{name: "logLevel", set: []string{"logLevel=debug"}, check: func(t *testing.T, objs []object) {
		hasArg(t, objs, "--log-level=debug")
	}},
	{name: "extraArgs", set: []string{"extraArgs={--token-expiration-seconds=900}"}, check: func(t *testing.T, objs []object) {
		args := containerArgs(t, objs)
		assert.Equal(t, "--token-expiration-seconds=900", args[len(args)-1])
	}},
}

// Every value changes what it says: each case renders and checks the object it names, and no
// other object changes.
func TestValues(t *testing.T) {
	defaults := byID(t, render(t))
	for _, c := range valueCases {
		t.Run(c.name, func(t *testing.T) {
			out, err := renderErr(c.values, c.set...)
			require.NoError(t, err)
			objs := decodeAll(t, out)
			c.check(t, objs)
			// The objects the case did not touch are as by default (the generated certificates
			// differ in every render).
			for _, o := range objs {
				d, ok := defaults[o.id()]
				if !ok || o.kind() == "Secret" || strings.HasSuffix(o.kind(), "WebhookConfiguration") || o.kind() == "Deployment" || o.kind() == "ServiceAccount" || o.kind() == "ConfigMap" || o.kind() == "PodDisruptionBudget" {
					continue
				}
				assert.Equal(t, toYAML(d), toYAML(o), "%s changed", o.id())
			}
		})
	}
}

// Every leaf of values.yaml is set by some case of TestValues: a value added without a test
// fails here.
func TestEveryValueIsTested(t *testing.T) {
	var defaults map[string]any
	require.NoError(t, yaml.Unmarshal(readFile(t, chartDir()+"/values.yaml"), &defaults))
	var leaves []string
	var walk func(prefix string, v any)
	walk = func(prefix string, v any) {
		m, ok := v.(map[string]any)
		if !ok || len(m) == 0 {
			leaves = append(leaves, prefix)
			return
		}
		for k, e := range m {
			walk(strings.TrimPrefix(prefix+"."+k, "."), e)
		}
	}
	walk("", defaults)
	var setKeys []string
	for _, c := range valueCases {
		for _, s := range c.set {
			k, _, _ := strings.Cut(s, "=")
			setKeys = append(setKeys, strings.ReplaceAll(k, "\\.", "."))
		}
		if c.values != "" {
			var m map[string]any
			require.NoError(t, yaml.Unmarshal([]byte(c.values), &m), c.name)
			var collect func(prefix string, v any)
			collect = func(prefix string, v any) {
				if mm, ok := v.(map[string]any); ok && len(mm) > 0 {
					for k, e := range mm {
						collect(strings.TrimPrefix(prefix+"."+k, "."), e)
					}
					return
				}
				setKeys = append(setKeys, prefix)
			}
			collect("", m)
		}
	}
	t.Logf("%d values, all set by a case", len(leaves))
	for _, leaf := range leaves {
		covered := slices.ContainsFunc(setKeys, func(k string) bool {
			return k == leaf || strings.HasPrefix(k, leaf+".") || strings.HasPrefix(k, leaf+"[") || strings.HasPrefix(leaf, k+".")
		})
		assert.True(t, covered, "value %s is set by no case of TestValues", leaf)
	}
}

// Values that make no sense are refused with a message, not rendered.
func TestBadValuesFail(t *testing.T) {
	for _, c := range []struct {
		set  []string
		want string
	}{
		{[]string{"policy.source=file"}, "/policy/source"},
		{[]string{"policy.source=none", "policy.objects=false"}, "no policy at all"},
		{[]string{"policy.source=configMap"}, "policy.configMap.name is required"},
		{[]string{"certificates.mode=self"}, "/certificates/mode"},
		{[]string{"broker.grants=everyone"}, "/broker/grants"},
		{[]string{"sidecar.identity=none"}, "/sidecar/identity"},
		{[]string{"sidecar.certificateLifetime=one hour"}, "/sidecar/certificateLifetime"},
		{[]string{"sidecar.metricsPort=70000"}, "/sidecar/metricsPort"},
		{[]string{"replica=3"}, "replica"},
		{[]string{"webhook.timeoutSeconds=60"}, "timeoutSeconds"},
		{[]string{"logLevel=verbose"}, "logLevel"},
		{[]string{"storage.enabled=yes"}, "/storage/enabled"},
		{[]string{"storage.readTTL=2h"}, "/storage/readTTL"},
		{[]string{"storage.uploadTTL=30 minutes"}, "/storage/uploadTTL"},
		{[]string{"storage.deleteTTL=61m"}, "/storage/deleteTTL"},
		{[]string{"storage.cacheBuffer=5"}, "/storage/cacheBuffer"},
		{[]string{"storage.maxCommitObjects=-1"}, "/storage/maxCommitObjects"},
		{[]string{"storage.endpoints.sts=sts.googleapis.com"}, "/storage/endpoints/sts"},
		{[]string{"storage.endpoints.storage=storage.googleapis.com:443"}, "/storage/endpoints/storage"},
		{[]string{"storage.endpoints.credentials=https://iamcredentials.googleapis.com"}, "/storage/endpoints/credentials"},
		{[]string{"storage.endpoints.pubsub=https://pubsub.googleapis.com"}, "/storage/endpoints/pubsub"},
		{[]string{"storage.endpoint.sts=https://sts.example"}, "endpoint"},
	} {
		_, err := renderErr("", c.set...)
		if assert.Error(t, err, "%v", c.set) {
			assert.Contains(t, err.Error(), c.want, "%v", c.set)
		}
	}
}
