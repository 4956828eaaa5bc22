package chart

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The chart's crds/ must be the very files of manifests/base/crds (Helm cannot read files outside
// the chart, so they are copies: `make chart-crds` refreshes them after `make generate`).
func TestCRDsAreTheBaseCRDs(t *testing.T) {
	base := filepath.Join(repoRoot(), "manifests", "base", "crds")
	chart := filepath.Join(chartDir(), "crds")
	names := func(dir string) []string {
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	require.Equal(t, names(base), names(chart), "charts/warden/crds and manifests/base/crds hold different files: run make chart-crds")
	for _, n := range names(base) {
		assert.Equal(t, string(readFile(t, filepath.Join(base, n))), string(readFile(t, filepath.Join(chart, n))),
			"charts/warden/crds/%s differs from manifests/base/crds/%s: run make chart-crds", n, n)
	}
}

// The chart's files/monitoring are the very files of manifests/monitoring (`make
// chart-monitoring`), and with monitoring.enabled the chart renders them as kustomize does, in
// the release namespace (elsewhere too: the ServiceMonitor then looks there), with Helm's labels.
func TestMonitoringIsManifestsMonitoring(t *testing.T) {
	dir := filepath.Join(repoRoot(), "manifests", "monitoring")
	copies := filepath.Join(chartDir(), "files", "monitoring")
	entries, err := os.ReadDir(copies)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		assert.Equal(t, string(readFile(t, filepath.Join(dir, e.Name()))), string(readFile(t, filepath.Join(copies, e.Name()))),
			"charts/warden/files/monitoring/%s differs from manifests/monitoring: run make chart-monitoring", e.Name())
	}
	kust := byID(t, kustomize(t, dir))
	assert.Len(t, names, len(kust), "one file per object of manifests/monitoring: run make chart-monitoring")

	chart := map[string]object{}
	for id, o := range byID(t, render(t, "monitoring.enabled=true")) {
		if o.apiVersion() == "monitoring.coreos.com/v1" || o.name() == "warden-webhook-metrics" {
			chart[id] = o
		}
	}
	compareSets(t, chart, kust)
	assert.Empty(t, func() []string {
		var ids []string
		for _, o := range render(t) {
			if o.apiVersion() == "monitoring.coreos.com/v1" {
				ids = append(ids, o.id())
			}
		}
		return ids
	}(), "off by default")

	out, err := renderIn("observability", "", "monitoring.enabled=true")
	require.NoError(t, err)
	sm := find(t, decodeAll(t, out), "ServiceMonitor", "warden-webhook")
	assert.Equal(t, "observability", dig(sm, "metadata", "namespace"))
	assert.Equal(t, []any{"observability"}, dig(sm, "spec", "namespaceSelector", "matchNames"))
}

// compareSets fails unless the two sets of objects are the same, object by object, once Helm's
// labels are removed from the chart's.
func compareSets(t *testing.T, chart, kust map[string]object) {
	t.Helper()
	assert.Equal(t, ids(kust), ids(chart), "the chart and kustomize render different sets of objects")
	for id, k := range kust {
		c, ok := chart[id]
		if !ok {
			continue
		}
		if d := cmp.Diff(map[string]any(k), map[string]any(withoutHelmLabels(c))); d != "" {
			t.Errorf("%s differs between kustomize and the chart (-kustomize +chart):\n%s", id, d)
		}
	}
	for id, c := range chart {
		if c.kind() == "CustomResourceDefinition" {
			continue // crds/ is installed as it is, never templated
		}
		labels, _ := dig(c, "metadata", "labels").(map[string]any)
		for _, l := range helmLabels {
			assert.Contains(t, labels, l, "%s lacks Helm's label %s", id, l)
		}
	}
}

// The default render is the kustomize base, with these differences only, each checked here:
//   - no Namespace: Helm keeps its release record in the release namespace, so the chart cannot
//     create it (namespace.create=true renders it, identical to the base's: see
//     TestNamespaceCreateIsTheBase);
//   - the certificates the chart generates: Secrets warden-webhook-ca and warden-webhook-tls, and
//     their CA as both webhook configurations' caBundle (the base leaves both to
//     certs/gen-certs.sh);
//   - Helm's labels on every object.
func TestDefaultRenderIsTheKustomizeBase(t *testing.T) {
	kust := byID(t, kustomize(t, filepath.Join(repoRoot(), "manifests", "base")))
	objs := render(t)
	chart := byID(t, objs)

	nsID := "v1/Namespace /" + releaseNamespace
	require.Contains(t, kust, nsID)
	delete(kust, nsID)

	caSecret := find(t, objs, "Secret", "warden-webhook-ca")
	tlsSecret := find(t, objs, "Secret", "warden-webhook-tls")
	delete(chart, caSecret.id())
	delete(chart, tlsSecret.id())
	caPEM := checkGeneratedCerts(t, caSecret, tlsSecret)

	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		c := find(t, objs, kind, "warden")
		stripped, bundles := withoutCABundle(c)
		require.Len(t, bundles, 1, "%s: one webhook with a caBundle", kind)
		assert.Equal(t, base64.StdEncoding.EncodeToString(caPEM), bundles[0], "%s: caBundle is the generated CA", kind)
		chart[c.id()] = stripped
	}
	compareSets(t, chart, kust)
}

// checkGeneratedCerts checks the generated Secrets are what the Deployment and the API server
// need: a CA, and a serving certificate it signed for the Service's names. It returns the CA PEM.
func checkGeneratedCerts(t *testing.T, caSecret, tlsSecret object) []byte {
	t.Helper()
	data := func(o object, key string) []byte {
		s, _ := dig(o, "data", key).(string)
		b, err := base64.StdEncoding.DecodeString(s)
		require.NoError(t, err, "%s %s", o.name(), key)
		require.NotEmpty(t, b, "%s %s", o.name(), key)
		return b
	}
	assert.Equal(t, "kubernetes.io/tls", tlsSecret["type"])
	caPEM := data(tlsSecret, "ca.crt")
	assert.Equal(t, string(data(caSecret, "tls.crt")), string(caPEM), "ca.crt is the CA Secret's certificate")
	_ = data(caSecret, "tls.key")
	_ = data(tlsSecret, "tls.key")

	parse := func(p []byte) *x509.Certificate {
		block, _ := pem.Decode(p)
		require.NotNil(t, block)
		c, err := x509.ParseCertificate(block.Bytes)
		require.NoError(t, err)
		return c
	}
	ca := parse(caPEM)
	assert.True(t, ca.IsCA)
	leaf := parse(data(tlsSecret, "tls.crt"))
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, host := range []string{"warden-webhook.warden-system.svc", "warden-webhook.warden-system.svc.cluster.local"} {
		_, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
		assert.NoError(t, err, "the serving certificate is valid for %s", host)
	}
	assert.WithinDuration(t, time.Now().AddDate(0, 0, 365), leaf.NotAfter, 48*time.Hour)
	assert.WithinDuration(t, time.Now().AddDate(0, 0, 3650), ca.NotAfter, 48*time.Hour)
	return caPEM
}

// With namespace.create=true and no certificates, the chart renders exactly the kustomize base.
func TestNamespaceCreateIsTheBase(t *testing.T) {
	kust := byID(t, kustomize(t, filepath.Join(repoRoot(), "manifests", "base")))
	chart := byID(t, render(t, "namespace.create=true", "certificates.mode=none"))
	compareSets(t, chart, kust)
}

// With certificates.mode=cert-manager the chart renders exactly the cert-manager overlay.
func TestCertManagerIsTheOverlay(t *testing.T) {
	kust := byID(t, kustomize(t, filepath.Join(repoRoot(), "manifests", "cert-manager")))
	chart := byID(t, render(t, "namespace.create=true", "certificates.mode=cert-manager"))
	compareSets(t, chart, kust)
}

// The rendered objects are in a namespace only where Kubernetes wants one.
func TestEveryNamespacedObjectIsInTheReleaseNamespace(t *testing.T) {
	clusterScoped := []string{"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"}
	for _, o := range render(t) {
		if slices.Contains(clusterScoped, o.kind()) {
			assert.Empty(t, o.namespace(), o.id())
		} else {
			assert.Equal(t, releaseNamespace, o.namespace(), o.id())
		}
	}
}

// Installed into another namespace, nothing still names warden-system: the Service, the broker
// URL, the certificates' names, the webhooks' client config and the namespaces they skip all
// follow the release namespace.
func TestAnotherNamespace(t *testing.T) {
	for _, mode := range []string{"generate", "cert-manager", "none"} {
		out, err := renderIn("platform-security", "", "namespace.create=true", "certificates.mode="+mode)
		require.NoError(t, err)
		assert.NotContains(t, out, "warden-system", "certificates.mode=%s", mode)
		objs := decodeAll(t, out)
		assert.Contains(t, containerArgs(t, objs), "--broker-url=https://warden-webhook.platform-security.svc:8443")
		for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
			w := find(t, objs, kind, "warden")
			assert.Equal(t, "platform-security", dig(w, "webhooks", 0, "clientConfig", "service", "namespace"))
			assert.Contains(t, dig(w, "webhooks", 0, "namespaceSelector", "matchExpressions", 1, "values"), "platform-security")
		}
		if mode == "generate" {
			tls := find(t, objs, "Secret", "warden-webhook-tls")
			leaf := parseCert(t, dig(tls, "data", "tls.crt").(string))
			assert.Equal(t, []string{"warden-webhook.platform-security.svc", "warden-webhook.platform-security.svc.cluster.local"}, leaf.DNSNames)
		}
	}
}
