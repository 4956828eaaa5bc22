package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/internal/testing/testenv"
	"github.com/warden-dev/warden/pkg/secrets"
)

// vaultOwners get Vault roles in the e2e suite.
var vaultOwners = []string{"apps/svc-prod-app-1", "ws/user-ds-1"}

// configureVault points the dev server's Kubernetes auth method at envtest's API server the way
// an admin would for a Vault outside the cluster: the token-reviewer manifest from
// manifests/vault, then manifests/vault/configure-vault.sh with the vault CLI.
func configureVault(ctx context.Context, dir string) error {
	for _, ns := range []string{"warden-system"} {
		if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return err
		}
	}
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "manifests/vault/token-reviewer.yaml"))
	if err != nil {
		return err
	}
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(raw), 4096)
	var sa corev1.ServiceAccount
	var crb rbacv1.ClusterRoleBinding
	if err := dec.Decode(&sa); err != nil {
		return err
	}
	if err := dec.Decode(&crb); err != nil {
		return err
	}
	if _, err := kube.CoreV1().ServiceAccounts(sa.Namespace).Create(ctx, &sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	if _, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, &crb, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return err
	}
	tr, err := kube.CoreV1().ServiceAccounts(sa.Namespace).CreateToken(ctx, sa.Name, &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		return err
	}
	caFile := filepath.Join(dir, "kube-ca.crt")
	if err := os.WriteFile(caFile, env.Config.CAData, 0o644); err != nil {
		return err
	}
	script := filepath.Join(testenv.RepoRoot(), "manifests/vault/configure-vault.sh")
	cctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	out, err := vaultSrv.Script(cctx, []string{
		"KUBERNETES_HOST=" + env.Config.Host,
		"KUBERNETES_CA_CERT=" + caFile,
		"TOKEN_REVIEWER_JWT=" + tr.Status.Token,
		"TOKEN_TTL=8s", // short, so renewal is observable in a test
		"BROKER_SERVICE_ACCOUNT=warden-system/warden-webhook",
	}, script, vaultOwners...)
	if err != nil {
		return fmt.Errorf("%s: %v\n%s", script, err, out)
	}
	return nil
}

// brokerVaultLogin is the broker's Vault login as the chart gives it: a token of the webhook's
// service account with audience vault, in a file, and the role configure-vault.sh wrote.
func brokerVaultLogin(ctx context.Context, dir string) (*secrets.Config, error) {
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "warden-system", Name: "warden-webhook"}}
	if _, err := kube.CoreV1().ServiceAccounts("warden-system").Create(ctx, sa, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return nil, err
	}
	tr, err := kube.CoreV1().ServiceAccounts("warden-system").CreateToken(ctx, "warden-webhook", &authnv1.TokenRequest{Spec: authnv1.TokenRequestSpec{
		Audiences: []string{"vault"}, ExpirationSeconds: ptr.To[int64](3600)}}, metav1.CreateOptions{})
	if err != nil {
		return nil, err
	}
	file := filepath.Join(dir, "broker-vault-token")
	if err := os.WriteFile(file, []byte(tr.Status.Token), 0o600); err != nil {
		return nil, err
	}
	return &secrets.Config{Addr: vaultSrv.Addr, Role: "warden-broker", TokenFile: file, Path: secrets.DefaultPath}, nil
}
