package identity

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
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

// Records keeps bindings and each owner's last used org in one ConfigMap of the webhook's
// namespace (keys "binding.NS.SA" and "last-org.NS.SA"; namespaces have no dots, so the first
// dot after the prefix separates them).
type Records struct {
	Kube      kubernetes.Interface
	Namespace string
	Name      string
}

const (
	bindingPrefix = "binding."
	lastOrgPrefix = "last-org."
)

func ownerKey(owner string) string { return strings.Replace(owner, "/", ".", 1) }

func keyOwner(k string) string { return strings.Replace(k, ".", "/", 1) }

func (r *Records) get(ctx context.Context) (*corev1.ConfigMap, error) {
	cm, err := r.Kube.CoreV1().ConfigMaps(r.Namespace).Get(ctx, r.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: r.Name, Namespace: r.Namespace,
			Labels: map[string]string{"app.kubernetes.io/part-of": "warden"}}}, nil
	}
	return cm, err
}

// update applies change to the ConfigMap's data, retrying on write conflicts (several broker
// replicas write here).
func (r *Records) update(ctx context.Context, change func(data map[string]string)) error {
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cm, err := r.get(ctx)
		if err != nil {
			return err
		}
		if cm.Data == nil {
			cm.Data = map[string]string{}
		}
		change(cm.Data)
		if cm.ResourceVersion == "" {
			_, err = r.Kube.CoreV1().ConfigMaps(r.Namespace).Create(ctx, cm, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				return apierrors.NewConflict(corev1.Resource("configmaps"), r.Name, err)
			}
			return err
		}
		_, err = r.Kube.CoreV1().ConfigMaps(r.Namespace).Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})
}

// Get returns the record of an owner.
func (r *Records) Get(ctx context.Context, owner string) (Record, bool, error) {
	cm, err := r.get(ctx)
	if err != nil {
		return Record{}, false, fmt.Errorf("%w: reading binding records: %v", ErrClusterUnavailable, err)
	}
	raw, ok := cm.Data[bindingPrefix+ownerKey(owner)]
	if !ok {
		return Record{}, false, nil
	}
	var rec Record
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return Record{}, false, fmt.Errorf("binding record of %s is unreadable: %w", owner, err)
	}
	return rec, true, nil
}

// Put saves an owner's record.
func (r *Records) Put(ctx context.Context, owner string, rec Record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return r.update(ctx, func(d map[string]string) { d[bindingPrefix+ownerKey(owner)] = string(b) })
}

// Delete removes an owner's record.
func (r *Records) Delete(ctx context.Context, owner string) error {
	return r.update(ctx, func(d map[string]string) { delete(d, bindingPrefix+ownerKey(owner)) })
}

// Owners lists the owners that have a record.
func (r *Records) Owners(ctx context.Context) ([]string, error) {
	cm, err := r.get(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for k := range cm.Data {
		if rest, ok := strings.CutPrefix(k, bindingPrefix); ok {
			out = append(out, keyOwner(rest))
		}
	}
	return out, nil
}

// LastOrg is the org an owner bound last (the seed's "default org" for a pre-run call).
func (r *Records) LastOrg(ctx context.Context, owner string) (string, bool, error) {
	cm, err := r.get(ctx)
	if err != nil {
		return "", false, err
	}
	org, ok := cm.Data[lastOrgPrefix+ownerKey(owner)]
	return org, ok, nil
}

// SetLastOrg remembers an owner's org.
func (r *Records) SetLastOrg(ctx context.Context, owner, org string) error {
	return r.update(ctx, func(d map[string]string) { d[lastOrgPrefix+ownerKey(owner)] = org })
}
