package e2e

import (
	"context"
	"os"
	"path/filepath"

	authnv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/internal/testing/testvault"
	"github.com/warden-dev/warden/pkg/secrets"
)

// vaultOwners get Vault roles in the e2e suite.
var vaultOwners = []string{"apps/svc-prod-app-1", "ws/user-ds-1"}

// configureVault configures the dev server as an admin would (testvault.ConfigureKubernetesAuth)
// with the broker's role too; the short TTL makes renewal observable in a test.
func configureVault(ctx context.Context, dir string) error {
	_, err := vaultSrv.ConfigureKubernetesAuth(ctx, kube, env.Config, dir, testvault.KubernetesAuth{
		Owners:               vaultOwners,
		TokenTTL:             "8s",
		BrokerServiceAccount: "warden-system/warden-webhook",
	})
	return err
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
