package chart

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart/loader"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/warden-dev/warden/internal/testing/testenv"
)

// The chart installs on a real kube-apiserver (every object accepted by the API server's own
// validation, the CRDs established), and `helm upgrade` keeps the generated certificates: the
// chart looks its Secrets up. A new certificates.generate.rotation word signs a new serving
// certificate with the same CA, once.
func TestInstallAndUpgradeKeepCertificates(t *testing.T) {
	assets, err := testenv.Assets()
	require.NoError(t, err, "`make chart-test` builds kube-apiserver and etcd")
	// A control plane of its own: the other one has testenv's webhook configurations, which have
	// the chart's names.
	env := &envtest.Environment{BinaryAssetsDirectory: assets}
	cfg, err := env.Start()
	require.NoError(t, err)
	t.Cleanup(func() { _ = env.Stop() })
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	require.NoError(t, os.WriteFile(kubeconfig, env.KubeConfig, 0o600))
	ns := releaseNamespace
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig, flags.Namespace = &kubeconfig, &ns
	helm := new(action.Configuration)
	require.NoError(t, helm.Init(flags, releaseNamespace, "secret", t.Logf))
	chrt, err := loader.Load(chartDir())
	require.NoError(t, err)
	kube := kubernetes.NewForConfigOrDie(cfg)
	ctx := context.Background()

	type certs struct{ ca, tls, caBundle []byte }
	current := func() certs {
		t.Helper()
		tls, err := kube.CoreV1().Secrets(releaseNamespace).Get(ctx, "warden-webhook-tls", metav1.GetOptions{})
		require.NoError(t, err)
		ca, err := kube.CoreV1().Secrets(releaseNamespace).Get(ctx, "warden-webhook-ca", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, ca.Data["tls.crt"], tls.Data["ca.crt"], "the serving Secret's ca.crt is the CA")
		m, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Get(ctx, "warden", metav1.GetOptions{})
		require.NoError(t, err)
		v, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Get(ctx, "warden", metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, m.Webhooks[0].ClientConfig.CABundle, v.Webhooks[0].ClientConfig.CABundle)
		verify(t, ca.Data["tls.crt"], tls.Data["tls.crt"])
		return certs{ca: ca.Data["tls.crt"], tls: tls.Data["tls.crt"], caBundle: m.Webhooks[0].ClientConfig.CABundle}
	}

	install := action.NewInstall(helm)
	install.ReleaseName, install.Namespace, install.CreateNamespace = releaseName, releaseNamespace, true
	_, err = install.Run(chrt, map[string]any{})
	require.NoError(t, err, "helm install")
	first := current()
	assert.Equal(t, first.ca, first.caBundle, "the webhooks trust the generated CA")
	crds, err := kube.Discovery().ServerResourcesForGroupVersion("warden.dev/v1alpha1")
	require.NoError(t, err, "the CRDs are served")
	assert.NotEmpty(t, crds.APIResources)

	upgrade := func(vals map[string]any) {
		t.Helper()
		u := action.NewUpgrade(helm)
		u.Namespace = releaseNamespace
		_, err := u.Run(releaseName, chrt, vals)
		require.NoError(t, err, "helm upgrade %v", vals)
	}
	upgrade(map[string]any{})
	again := current()
	assert.Equal(t, first, again, "a plain upgrade keeps the CA and the serving certificate")

	rotate := func(word string) map[string]any {
		return map[string]any{"certificates": map[string]any{"generate": map[string]any{"rotation": word}}}
	}
	upgrade(rotate("2027-01"))
	rotated := current()
	assert.Equal(t, first.ca, rotated.ca, "rotation keeps the CA (running sidecars trust it)")
	assert.Equal(t, first.caBundle, rotated.caBundle)
	assert.NotEqual(t, first.tls, rotated.tls, "rotation signs a new serving certificate")

	// `helm upgrade` without values reuses the last ones (the same word), and the same word again
	// keeps the certificate: rotation happens once per word.
	upgrade(map[string]any{})
	assert.Equal(t, rotated, current(), "an upgrade reusing the word keeps the rotated certificate")
	upgrade(rotate("2027-01"))
	assert.Equal(t, rotated, current(), "the same word again keeps it")
	upgrade(rotate("2027-02"))
	again = current()
	assert.Equal(t, first.ca, again.ca)
	assert.NotEqual(t, rotated.tls, again.tls, "a new word rotates again")
}

// verify checks that the CA signed the serving certificate for the Service's name.
func verify(t *testing.T, caPEM, certPEM []byte) {
	t.Helper()
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	block, _ := pem.Decode(certPEM)
	require.NotNil(t, block)
	leaf, err := x509.ParseCertificate(block.Bytes)
	require.NoError(t, err)
	_, err = leaf.Verify(x509.VerifyOptions{DNSName: "warden-webhook.warden-system.svc", Roots: pool})
	assert.NoError(t, err)
	assert.False(t, bytes.Equal(caPEM, certPEM))
}
