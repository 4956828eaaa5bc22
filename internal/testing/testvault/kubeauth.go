package testvault

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/internal/testing/testenv"
)

// KubernetesAuth is what ConfigureKubernetesAuth passes to manifests/vault/configure-vault.sh.
type KubernetesAuth struct {
	Owners               []string // NAMESPACE/SERVICEACCOUNT, one Vault role each
	TokenTTL             string   // empty: the script's default
	BrokerServiceAccount string   // NAMESPACE/NAME; empty: no warden-broker role
}

// ConfigureKubernetesAuth points the dev server's Kubernetes auth method at the API server of rc
// the way an admin would for a Vault outside the cluster: the manifests themselves
// (manifests/vault/token-reviewer.yaml, then configure-vault.sh with the vault CLI), so every
// suite and `make demo` prove the documented steps rather than a copy of them. It is safe to
// run again against the same cluster. dir receives the CA file; the script's output is returned.
func (s *Server) ConfigureKubernetesAuth(ctx context.Context, kube kubernetes.Interface, rc *rest.Config, dir string, opts KubernetesAuth) ([]byte, error) {
	jwt, err := tokenReviewer(ctx, kube)
	if err != nil {
		return nil, fmt.Errorf("token reviewer: %w", err)
	}
	caFile := filepath.Join(dir, "kube-ca.crt")
	if err := os.WriteFile(caFile, rc.CAData, 0o644); err != nil {
		return nil, err
	}
	env := []string{"KUBERNETES_HOST=" + rc.Host, "KUBERNETES_CA_CERT=" + caFile, "TOKEN_REVIEWER_JWT=" + jwt}
	if opts.TokenTTL != "" {
		env = append(env, "TOKEN_TTL="+opts.TokenTTL)
	}
	if opts.BrokerServiceAccount != "" {
		env = append(env, "BROKER_SERVICE_ACCOUNT="+opts.BrokerServiceAccount)
	}
	script := filepath.Join(testenv.RepoRoot(), "manifests/vault/configure-vault.sh")
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := s.Script(cctx, env, script, opts.Owners...)
	if err != nil {
		return out, fmt.Errorf("%s: %v\n%s", script, err, out)
	}
	return out, nil
}

// tokenReviewer applies manifests/vault/token-reviewer.yaml (its namespace too, which a fresh
// control plane lacks) and mints a token of its service account.
func tokenReviewer(ctx context.Context, kube kubernetes.Interface) (string, error) {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "manifests/vault/token-reviewer.yaml"))
	if err != nil {
		return "", err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var sa corev1.ServiceAccount
	var crb rbacv1.ClusterRoleBinding
	if err := dec.Decode(&sa); err != nil {
		return "", err
	}
	if err := dec.Decode(&crb); err != nil {
		return "", err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: sa.Namespace}}
	if _, err := kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return "", err
	}
	if _, err := kube.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, &sa, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return "", err
	}
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, &crb, metav1.CreateOptions{}); ignoreExists(err) != nil {
		return "", err
	}
	tr, err := kube.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name, &authnv1.TokenRequest{
		Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		return "", err
	}
	return tr.Status.Token, nil
}

func ignoreExists(err error) error {
	if apierrors.IsAlreadyExists(err) {
		return nil
	}
	return err
}

// RootClient is an API client of this server with the root token, for tests that arrange or
// inspect Vault's state directly.
func (s *Server) RootClient() (*vaultapi.Client, error) {
	c, err := vaultapi.NewClient(&vaultapi.Config{Address: s.Addr})
	if err != nil {
		return nil, err
	}
	c.SetToken(RootToken)
	return c, nil
}
