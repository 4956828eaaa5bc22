package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/warden-dev/warden/internal/testing/fakecreds"
	wardenv1 "github.com/warden-dev/warden/pkg/apis/warden/v1alpha1"
	"github.com/warden-dev/warden/pkg/brokerapi"
)

var storageBenchRuns int

// BenchmarkStorageCredentials is POST /v1/storage/credentials through a sidecar and the broker
// (TokenReview cache warm), over loopback HTTP as app code calls it, against the in-process IAM
// Credentials and STS. Cold: the first request for each of STORAGE_SPACES spaces (a mint: IAM
// GenerateAccessToken and an STS exchange); warm: b.N requests spread over the same spaces, all
// answered from the broker's cache. Reported: p50 and p99 of each.
//
//	make bench-storage   (go test ./test/e2e -run '^$' -bench StorageCredentials -benchtime 5000x)
func BenchmarkStorageCredentials(b *testing.B) {
	setup(b)
	spaces := envInt("STORAGE_SPACES", 200)
	admin := objectsClient(b, "bench-storage-admin")
	_, err := kube.RbacV1().ClusterRoleBindings().Create(ctx(b), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-bench-storage-admin"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "warden-admin"},
		Subjects:   []rbacv1.Subject{{Kind: "User", APIGroup: "rbac.authorization.k8s.io", Name: "bench-storage-admin"}},
	}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		require.NoError(b, err)
	}
	owner := wardenv1.Member("serviceAccount:apps/svc-prod-app-1")
	// The benchmark function runs more than once (b.N = 1 first), and the broker's cache lives
	// on: every run has an org and spaces of its own, so that its cold requests are cold.
	storageBenchRuns++
	org := fmt.Sprintf("bench%d", storageBenchRuns)
	create := func(o client.Object) { require.NoError(b, admin.Create(ctx(b), o)) }
	create(&wardenv1.Org{ObjectMeta: metav1.ObjectMeta{Name: org}, Spec: wardenv1.OrgSpec{
		GCPServiceAccount: "aes4-svc@my-project.iam.gserviceaccount.com", Storage: &wardenv1.OrgStorage{Access: []wardenv1.Member{owner}},
	}})
	for i := range spaces {
		create(&wardenv1.Space{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.s%d", org, i)}, Spec: wardenv1.SpaceSpec{
			Org: org, Bucket: "bench-data", Prefix: fmt.Sprintf("%s/s%d/", org, i), RoleGrants: wardenv1.RoleGrants{Users: []wardenv1.Member{owner}},
		}})
	}
	sc := startSidecar(b, "apps", "svc-prod-app-1", "bench-storage", brokered)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	ask := func(i int) time.Duration {
		body, _ := json.Marshal(map[string]string{"org": org, "space": fmt.Sprintf("s%d", i%spaces), "access": "read"})
		start := time.Now()
		resp, err := client.Post(sc.url+brokerapi.PathStorageCredentials, "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		took := time.Since(start)
		if resp.StatusCode != 200 {
			b.Fatalf("space s%d: %s", i%spaces, resp.Status)
		}
		return took
	}
	// The last Space must be in force before measuring: the webhook's cache sees objects late.
	require.Eventually(b, func() bool {
		body, _ := json.Marshal(map[string]string{"org": org, "space": fmt.Sprintf("s%d", spaces-1), "access": "upload"})
		resp, err := client.Post(sc.url+brokerapi.PathStorageCredentials, "application/json", bytes.NewReader(body))
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 403 // known space, no supplier role: the view has it
	}, time.Minute, 100*time.Millisecond)

	mints := gcp.Creds.Calls(fakecreds.MethodGenerateAccessToken)
	cold := make([]time.Duration, spaces)
	for i := range spaces {
		cold[i] = ask(i)
	}
	require.Equal(b, mints+spaces, gcp.Creds.Calls(fakecreds.MethodGenerateAccessToken), "every cold request minted")
	warm := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		warm = append(warm, ask(i))
	}
	b.StopTimer()
	require.Equal(b, mints+spaces, gcp.Creds.Calls(fakecreds.MethodGenerateAccessToken), "every warm request came from the cache")
	b.ReportMetric(float64(percentile(cold, .50).Microseconds()), "cold-p50-µs")
	b.ReportMetric(float64(percentile(cold, .99).Microseconds()), "cold-p99-µs")
	b.ReportMetric(float64(percentile(warm, .50).Microseconds()), "warm-p50-µs")
	b.ReportMetric(float64(percentile(warm, .99).Microseconds()), "warm-p99-µs")
}
