//go:build node

package node

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	certv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/pkg/admission/mutate"
	"github.com/warden-dev/warden/pkg/brokerapi"
	"github.com/warden-dev/warden/pkg/contract"
)

// (8) The sidecar's identity: the kubelet requests the pod's certificate from Warden's signer
// (the podCertificate source of warden-token), projects it, and the sidecar presents it to the
// broker over mutual TLS. The same certificate from the host works; a token minted as
// `kubectl create token svc-prod-app-1 --audience warden --bound-object-kind Pod
// --bound-object-name identity` does not.
func TestPodCertificate(t *testing.T) {
	if os.Getenv("NODE_IDENTITY") == mutate.IdentityToken {
		t.Skip("NODE_IDENTITY=token: the suite runs token identity")
	}
	p := running(t, create(t, appPod("apps", "identity", "svc-prod-app-1", "serve")))
	ctx := context.Background()

	// The kubelet's request, for this pod, answered by Warden's signer.
	pcrs, err := kube.CertificatesV1().PodCertificateRequests("apps").List(ctx, metav1.ListOptions{FieldSelector: "spec.podName=identity"})
	if err != nil {
		t.Fatal(err)
	}
	var issued *certv1.PodCertificateRequest
	for i, r := range pcrs.Items {
		for _, c := range r.Status.Conditions {
			if r.Spec.PodUID == p.UID && r.Spec.SignerName == contract.SignerName && c.Type == certv1.PodCertificateRequestConditionTypeIssued {
				issued = &pcrs.Items[i]
			}
		}
	}
	if issued == nil {
		t.Fatalf("no issued PodCertificateRequest for pod identity (%s): %+v", p.UID, pcrs.Items)
	}
	if issued.Spec.NodeName != "warden-node" {
		t.Errorf("requested for node %q", issued.Spec.NodeName)
	}

	// What the kubelet projected into the sidecar's volume.
	bundleFile := filepath.Join(node.KubeletDir(), "pods", string(p.UID), "volumes", "kubernetes.io~projected", contract.VolumeToken, "credentials.pem")
	bundle, err := os.ReadFile(bundleFile)
	if err != nil {
		t.Fatalf("the projected credential bundle: %v", err)
	}
	var leaf *x509.Certificate
	for rest := bundle; ; {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" && leaf == nil {
			if leaf, err = x509.ParseCertificate(b.Bytes); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := "spiffe://warden.dev/ns/apps/sa/svc-prod-app-1/pod/identity/" + string(p.UID)
	if leaf == nil || len(leaf.URIs) != 1 || leaf.URIs[0].String() != want {
		t.Fatalf("projected certificate names %v, want %s", leaf, want)
	}

	// The sidecar is trusted by the broker: the app lists a granted dataset through it.
	if r := call(t, p, "GET", "/v1/datasets/prod-dataset-1/files", "", nil); r.Status != http.StatusOK {
		t.Fatalf("listing a granted dataset through the broker: %d %s", r.Status, r.Body)
	}
	var seen bool
	for _, l := range webhookLog.lines("grant") {
		seen = seen || l["pod"] == "apps/identity"
	}
	if !seen {
		t.Errorf("the broker never answered for pod apps/identity: %v", webhookLog.lines("grant"))
	}

	ca, err := os.ReadFile(filepath.Join(env.CertDir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(ca)
	check := func(cfg *tls.Config, bearer string) (int, string) {
		cfg.RootCAs = roots
		req, _ := http.NewRequest(http.MethodPost, brokerURL+brokerapi.PathCheck, strings.NewReader(`{"dataset":"prod-dataset-1","caller":{"user":"user-ds-1"}}`))
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := (&http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := check(&tls.Config{GetClientCertificate: (&brokerapi.ClientCertificate{File: bundleFile}).Get}, ""); code != http.StatusOK {
		t.Errorf("the projected certificate from the host: %d %s", code, body)
	}
	tr, err := kube.CoreV1().ServiceAccounts("apps").CreateToken(ctx, "svc-prod-app-1", &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
		Audiences: []string{contract.TokenAudience}, ExpirationSeconds: ptr.To[int64](600),
		BoundObjectRef: &authnv1.BoundObjectReference{Kind: "Pod", APIVersion: "v1", Name: p.Name, UID: p.UID},
	}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if code, body := check(&tls.Config{}, tr.Status.Token); code != http.StatusUnauthorized || !strings.Contains(body, "accepts no service-account tokens") {
		t.Errorf("a minted token bound to the pod: %d %s, want 401", code, body)
	}
}
