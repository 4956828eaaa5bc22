package app

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/warden-dev/warden/pkg/guard"
)

// DefaultStatusKeySecret is the Secret, in the webhook's namespace, that holds the keys sealing
// warden.dev/status. Every replica reads the same Secret, so any replica verifies what any other
// (of any version) injected. Each data entry is one key; the entry with the greatest name signs.
// To rotate: add an entry with a greater name (e.g. k20270101000000), wait for the replicas to
// pick it up (StatusKeyRefresh), and remove the old entry once no pod sealed with it runs.
const DefaultStatusKeySecret = "warden-status-key"

// DefaultPolicyConfigMap is the ConfigMap (in the webhook's namespace) that holds the policy.
const DefaultPolicyConfigMap = "warden-policy"

// StatusKeyRefresh is how often replicas re-read the Secret.
const StatusKeyRefresh = time.Minute

// loadKeys reads (or, on first start, creates) the key Secret at start-up.
func loadKeys(kube kubernetes.Interface, namespace, name string) (*guard.Keyring, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data, err := statusKeys(ctx, kube, namespace, name, true)
	if err != nil {
		return nil, err
	}
	keys, err := guard.NewKeyring(data)
	if err != nil {
		return nil, fmt.Errorf("webhook: Secret %s/%s: %w", namespace, name, err)
	}
	return keys, nil
}

// statusKeys reads the key Secret. With create, a missing Secret is made with a fresh random key
// (the first start of the first replica; two replicas racing both end up with whichever won).
// Refreshes never create: a Secret deleted by mistake must not silently become a new key that
// refuses every running pod.
func statusKeys(ctx context.Context, kube kubernetes.Interface, namespace, name string, create bool) (map[string][]byte, error) {
	secrets := kube.CoreV1().Secrets(namespace)
	s, err := secrets.Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) && create {
		key := make([]byte, guard.MinKeyBytes)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		id := "k" + time.Now().UTC().Format("20060102150405")
		s, err = secrets.Create(ctx, &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, Labels: map[string]string{"app.kubernetes.io/part-of": "warden"}},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{id: key},
		}, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			s, err = secrets.Get(ctx, name, metav1.GetOptions{})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("webhook: status key Secret %s/%s: %w", namespace, name, err)
	}
	return s.Data, nil
}

// refreshStatusKeys keeps the keyring in step with the Secret until ctx ends. A failed read or a
// broken edit keeps the keys in force and is logged: replicas never stop sealing.
func refreshStatusKeys(ctx context.Context, kube kubernetes.Interface, namespace, name string, keys *guard.Keyring, log *slog.Logger) {
	t := time.NewTicker(StatusKeyRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		data, err := statusKeys(ctx, kube, namespace, name, false)
		if err == nil {
			err = keys.Set(data)
		}
		if err != nil && ctx.Err() == nil {
			log.Error("status keys not refreshed; the previous keys stay in force", "error", err)
		}
	}
}
