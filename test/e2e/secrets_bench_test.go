package e2e

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	vault "github.com/hashicorp/vault/api"
	"github.com/stretchr/testify/require"

	sidecarapp "github.com/warden-dev/warden/cmd/sidecar/app"
)

// BenchmarkSecretsCachedGet is GET /v1/secrets/{key} answered from the sidecar's cache, over
// loopback HTTP as app code calls it. Reported: p50 and p99 per request.
//
//	make bench-secrets   (go test ./test/e2e -run '^$' -bench Secrets -benchtime 3000x)
func BenchmarkSecretsCachedGet(b *testing.B) {
	setup(b)
	sc := startSidecar(b, "apps", "svc-prod-app-1", "bench-cached", func(o *sidecarapp.Options) { o.VaultCacheTTL = time.Hour })
	code, _, _ := sc.call(b, "PUT", "/v1/secrets", "", map[string]string{"db-password": "s3cr3t", "api-key": "k"})
	require.Equal(b, 204, code)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	get := func() {
		resp, err := client.Get(sc.url + "/v1/secrets/db-password")
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("get: %v %v", err, resp)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get()
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		get()
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	reportPercentiles(b, lat)
}

// BenchmarkSecretsUncachedOverhead alternates a direct vault/api KV v2 read with an uncached
// sidecar read (cache TTL 0: login token, KV read, JSON, HTTP) of the same entry, and reports
// their means and the ratio.
func BenchmarkSecretsUncachedOverhead(b *testing.B) {
	setup(b)
	sc := startSidecar(b, "apps", "svc-prod-app-1", "bench-uncached", func(o *sidecarapp.Options) { o.VaultCacheTTL = 0 })
	code, _, _ := sc.call(b, "PUT", "/v1/secrets", "", map[string]string{"db-password": "s3cr3t"})
	require.Equal(b, 204, code)
	// The direct client logs in exactly as the sidecar does (same role, same pod token), so both
	// reads pay for the same Vault policy evaluation.
	direct0, err := vault.NewClient(&vault.Config{Address: vaultSrv.Addr})
	require.NoError(b, err)
	jwt, err := os.ReadFile(filepath.Join(sc.base, "token"))
	require.NoError(b, err)
	login, err := direct0.Logical().Write("auth/kubernetes/login", map[string]any{"role": "warden-apps-svc-prod-app-1", "jwt": string(jwt)})
	require.NoError(b, err)
	direct0.SetToken(login.Auth.ClientToken)
	kv := direct0.KVv2("secret")
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	viaSidecar := func() {
		resp, err := client.Get(sc.url + "/v1/secrets/db-password")
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("get: %v %v", err, resp)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	direct := func() {
		if _, err := kv.Get(context.Background(), "warden/apps/svc-prod-app-1"); err != nil {
			b.Fatal(err)
		}
	}
	viaSidecar()
	direct()
	var dSum, sSum time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		direct()
		t1 := time.Now()
		viaSidecar()
		dSum += t1.Sub(t0)
		sSum += time.Since(t1)
	}
	b.StopTimer()
	b.ReportMetric(float64(dSum.Microseconds())/float64(b.N), "direct-µs")
	b.ReportMetric(float64(sSum.Microseconds())/float64(b.N), "sidecar-µs")
	b.ReportMetric(float64(sSum)/float64(dSum), "ratio")
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	slices.Sort(lat)
	at := func(p float64) float64 {
		return float64(lat[min(len(lat)-1, int(p*float64(len(lat))))].Nanoseconds()) / 1000
	}
	b.ReportMetric(at(.50), "p50-µs")
	b.ReportMetric(at(.99), "p99-µs")
}
