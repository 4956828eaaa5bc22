package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/warden-dev/warden/pkg/identity"
	"github.com/warden-dev/warden/pkg/policy"
)

// BenchmarkIdentityBind binds b.N distinct Kubernetes service accounts to one org's GCP service
// account, each bind complete: binding record (ConfigMap), IAM read-modify-write against the
// fake, KSA annotation (merge patch) against the real API server, last-org record. Reported:
// p50/p99 per bind and IAM writes per bind.
//
//	make bench-identity   (go test ./test/e2e -run '^$' -bench IdentityBind -benchtime 1000x)
func BenchmarkIdentityBind(b *testing.B) {
	const ns = "bench-identity"
	ensureNamespace(b, ns, false)
	gsa := orgGSAs[2]
	var members, owners strings.Builder
	for i := range b.N {
		name := fmt.Sprintf("ksa-%d", i)
		if _, err := kube.CoreV1().ServiceAccounts(ns).Create(context.Background(), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			b.Fatal(err)
		}
		fmt.Fprintf(&owners, "  - {serviceAccount: %s/%s, environment: dev}\n", ns, name)
		fmt.Fprintf(&members, "serviceAccount:%s/%s, ", ns, name)
	}
	pol, err := policy.Parse([]byte("owners:\n" + owners.String() +
		"orgs:\n  - name: bench\n    gcpServiceAccount: " + gsa + "\n    members: [" + strings.TrimSuffix(members.String(), ", ") + "]\ngcp:\n  project: my-project\n"))
	require.NoError(b, err)
	binder := &identity.Binder{
		Policies:    &identity.Policies{IAM: mustIAMClient(b)},
		Records:     &identity.Records{Kube: kube, Namespace: "warden-system", Prefix: fmt.Sprintf("bench-identity-%d", time.Now().UnixNano())},
		Kube:        kube,
		Policy:      func() policy.View { return pol },
		Propagation: time.Minute,
	}
	writesBefore := fakeIAM.Writes(gsa)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		start := time.Now()
		if _, err := binder.Bind(context.Background(), fmt.Sprintf("%s/ksa-%d", ns, i), policy.Principal{}, "bench"); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
	b.ReportMetric(float64(fakeIAM.Writes(gsa)-writesBefore)/float64(b.N), "iam-writes/bind")
	// Binding again changes nothing in IAM.
	before := fakeIAM.Writes(gsa)
	_, err = binder.Bind(context.Background(), ns+"/ksa-0", policy.Principal{}, "bench")
	require.NoError(b, err)
	require.Equal(b, before, fakeIAM.Writes(gsa))
	for i := range b.N {
		require.NoError(b, binder.Reset(context.Background(), fmt.Sprintf("%s/ksa-%d", ns, i)))
	}
}

func mustIAMClient(b *testing.B) identity.IAM {
	c, err := identity.NewIAMClient(context.Background(), fakeIAM.Addr, true)
	require.NoError(b, err)
	b.Cleanup(func() { _ = c.Close() })
	return c
}
