package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/warden-dev/warden/internal/testing/kubeletcert"
	"github.com/warden-dev/warden/internal/testing/testenv"
	"github.com/warden-dev/warden/pkg/brokerapi"
)

// demoNode is the node the demo's sidecar pod is bound to; the demo does its kubelet's part.
const demoNode = "demo-node"

// kubeletCertificate does what the kubelet does for the sidecar's podCertificate volume: as
// the node's user, a PodCertificateRequest for the pod, answered by Warden's signer.
func kubeletCertificate(ctx context.Context, env *testenv.Env, kube *kubernetes.Clientset, p *corev1.Pod) ([]byte, error) {
	// The local control plane has no Node authorizer: nodes act through the system:node role.
	if err := kubeletcert.AllowNodes(ctx, kube); err != nil {
		return nil, err
	}
	node, err := kubeletcert.EnsureNode(ctx, kube, demoNode)
	if err != nil {
		return nil, err
	}
	sa, err := kube.CoreV1().ServiceAccounts(p.Namespace).Get(ctx, p.Spec.ServiceAccountName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:node:" + demoNode, Groups: []string{"system:nodes", "system:authenticated"}}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	bundle, err := kubeletcert.Request(rctx, kubernetes.NewForConfigOrDie(cfg), node, p, sa)
	if err != nil {
		return nil, fmt.Errorf("the pod's certificate: %w", err)
	}
	remaining := bundle
	for {
		var b *pem.Block
		if b, remaining = pem.Decode(remaining); b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			if c, err := x509.ParseCertificate(b.Bytes); err == nil {
				fmt.Printf("as the kubelet of node %s would: a PodCertificateRequest for %s/%s; Warden's signer issued\n  %s, issuer %q, valid until %s\n",
					demoNode, p.Namespace, p.Name, c.URIs[0], c.Issuer.CommonName, c.NotAfter.Format(time.RFC3339))
			}
			break
		}
	}
	return bundle, nil
}

// brokerWithToken calls the broker with a bearer token instead of the pod certificate.
func brokerWithToken(broker, caFile, token string) (int, string) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return 0, err.Error()
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	req, _ := http.NewRequest(http.MethodPost, broker+brokerapi.PathCheck, strings.NewReader(`{"dataset":"prod-dataset-1","caller":{"user":"user-ds-1"}}`))
	req.Header.Set("Authorization", "Bearer "+token)
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}
