package identity

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	"github.com/warden-dev/warden/pkg/contract"
)

// Record is what Warden wrote for one Kubernetes service account. It is saved before IAM is
// changed, so whatever happens next (a crash, an outage) the reconciler knows which member to
// take out of which GCP service accounts.
type Record struct {
	Org     string    `json:"org"`
	GSA     string    `json:"gsa"`
	Member  string    `json:"member"`
	Written time.Time `json:"written"`
	// Previous is a GCP service account the member is still to be removed from (an org switch
	// whose clean-up has not succeeded yet).
	Previous string `json:"previous,omitempty"`
}

// Records keeps, per owner, one small ConfigMap in the webhook's namespace holding its binding
// record and the org it used last. One object per owner keeps every write small, whatever the
// number of owners; the label lets the reconciler list them.
type Records struct {
	Kube      kubernetes.Interface
	Namespace string
	// Prefix of the ConfigMap names (default "warden-identity").
	Prefix string
}

const (
	keyOwner   = "owner"
	keyBinding = "binding"
	keyLastOrg = "last-org"
)

func (r *Records) name(owner string) string {
	p := r.Prefix
	if p == "" {
		p = "warden-identity"
	}
	// namespace.serviceaccount is a valid name suffix (a DNS label and a DNS subdomain); a name
	// too long for Kubernetes is shortened to a hash.
	n := p + "." + strings.Replace(owner, "/", ".", 1)
	if len(n) > 253 {
		sum := sha256.Sum256([]byte(owner))
		n = p + "." + hex.EncodeToString(sum[:20])
	}
	return n
}

func (r *Records) get(ctx context.Context, owner string) (*corev1.ConfigMap, error) {
	cm, err := r.Kube.CoreV1().ConfigMaps(r.Namespace).Get(ctx, r.name(owner), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: r.name(owner), Namespace: r.Namespace,
			Labels: map[string]string{"app.kubernetes.io/part-of": "warden", contract.LabelIdentityRecord: "true"}},
			Data: map[string]string{keyOwner: owner}}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: reading the identity record of %s: %v", ErrClusterUnavailable, owner, err)
	}
	return cm, nil
}

// Get returns the binding record of an owner.
func (r *Records) Get(ctx context.Context, owner string) (Record, bool, error) {
	cm, err := r.get(ctx, owner)
	if err != nil {
		return Record{}, false, err
	}
	raw, ok := cm.Data[keyBinding]
	if !ok {
		return Record{}, false, nil
	}
	var rec Record
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return Record{}, false, fmt.Errorf("binding record of %s is unreadable: %w", owner, err)
	}
	return rec, true, nil
}

// Save writes an owner's binding record (nil removes it) and, when lastOrg is set, the org it
// used last, in one write; write conflicts (another replica) are retried.
func (r *Records) Save(ctx context.Context, owner string, rec *Record, lastOrg string) error {
	var binding []byte
	if rec != nil {
		var err error
		if binding, err = json.Marshal(rec); err != nil {
			return err
		}
	}
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cm, err := r.get(ctx, owner)
		if err != nil {
			return err
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		cm.Data[keyOwner] = owner
		if rec != nil {
			cm.Data[keyBinding] = string(binding)
		} else {
			delete(cm.Data, keyBinding)
		}
		if lastOrg != "" {
			cm.Data[keyLastOrg] = lastOrg
		}
		if cm.ResourceVersion == "" {
			_, err = r.Kube.CoreV1().ConfigMaps(r.Namespace).Create(ctx, cm, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(corev1.Resource("configmaps"), cm.Name, err)
			}
			return err
		}
		_, err = r.Kube.CoreV1().ConfigMaps(r.Namespace).Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		return fmt.Errorf("%w: saving the identity record of %s: %v", ErrClusterUnavailable, owner, err)
	}
	return nil
}

// Owners lists the owners that have a binding record.
func (r *Records) Owners(ctx context.Context) ([]string, error) {
	list, err := r.Kube.CoreV1().ConfigMaps(r.Namespace).List(ctx, metav1.ListOptions{LabelSelector: contract.LabelIdentityRecord + "=true"})
	if err != nil {
		return nil, fmt.Errorf("%w: listing identity records: %v", ErrClusterUnavailable, err)
	}
	var out []string
	for _, cm := range list.Items {
		if _, bound := cm.Data[keyBinding]; bound && cm.Data[keyOwner] != "" {
			out = append(out, cm.Data[keyOwner])
		}
	}
	return out, nil
}

// LastOrg is the org an owner bound last (the seed's "default org" for a pre-run call).
func (r *Records) LastOrg(ctx context.Context, owner string) (string, bool, error) {
	cm, err := r.get(ctx, owner)
	if err != nil {
		return "", false, err
	}
	org, ok := cm.Data[keyLastOrg]
	return org, ok, nil
}
