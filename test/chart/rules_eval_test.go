package chart

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A scenario: series loaded in promqltest's notation (one sample a minute from time 0), the time
// the expression is evaluated at, and whether the alert's expression then returns anything (the
// alert's `for` aside).
type scenario struct {
	name   string
	series string
	at     time.Duration
	fires  bool
}

const job = `job="warden-webhook-metrics"`

// Each alert fires on what it is about and stays quiet on its near misses: its expression is
// evaluated by Prometheus's own engine on series shaped like Warden's.
func TestRulesFireOnWhatTheySay(t *testing.T) {
	m := loadMonitoring(t)
	exprs := map[string]string{}
	for _, g := range m.rule.Spec.Groups {
		for _, r := range g.Rules {
			exprs[r.Alert] = r.Expr.String()
		}
	}
	hour := time.Hour
	day := 24 * time.Hour
	cases := map[string][]scenario{
		"WardenWebhookDown": {
			{"every replica down", `up{` + job + `,pod="a"} 0x60` + "\n" + `up{` + job + `,pod="b"} 0x60`, hour, true},
			{"no target at all", `up{job="other"} 1x60`, hour, true},
			{"one replica up", `up{` + job + `,pod="a"} 1x60` + "\n" + `up{` + job + `,pod="b"} 0x60`, hour, false},
		},
		"WardenWebhookReplicaDown": {
			{"one down", `up{` + job + `,pod="a"} 1x60` + "\n" + `up{` + job + `,pod="b"} 0x60`, hour, true},
			{"all up", `up{` + job + `,pod="a"} 1x60`, hour, false},
		},
		"WardenAdmissionErrors": {
			{"5 % errors", `warden_admission_requests_total{outcome="injected"} 0+95x60` + "\n" + `warden_admission_requests_total{outcome="error"} 0+5x60`, hour, true},
			{"no errors", `warden_admission_requests_total{outcome="injected"} 0+95x60` + "\n" + `warden_admission_requests_total{outcome="denied"} 0+50x60`, hour, false},
		},
		"WardenWebhookHTTPErrors": {
			{"400s", `controller_runtime_webhook_requests_total{` + job + `,webhook="/mutate-v1-pod",code="400"} 0+1x60`, hour, true},
			{"200s, and the 500 series controller-runtime starts at 0", `controller_runtime_webhook_requests_total{` + job + `,webhook="/mutate-v1-pod",code="200"} 0+10x60` + "\n" +
				`controller_runtime_webhook_requests_total{` + job + `,webhook="/mutate-v1-pod",code="500"} 0x60`, hour, false},
		},
		"WardenWebhookSlow": {
			{"p99 over 1 s", latency("0+0x60", "0+0x60", "0+10x60"), hour, true},
			{"fast", latency("0+10x60", "0+10x60", "0+10x60"), hour, false},
		},
		"WardenPolicyUnhealthy": {
			{"broken file", `warden_policy_healthy{pod="a"} 0x60`, hour, true},
			{"healthy", `warden_policy_healthy{pod="a"} 1x60`, hour, false},
		},
		"WardenPolicyObjectsStatusErrors": {
			{"status writer errors", `controller_runtime_reconcile_errors_total{` + job + `,controller="warden-status-Dataset"} 0+1x60`, hour, true},
			{"identity errors are another alert", `controller_runtime_reconcile_errors_total{` + job + `,controller="warden-identity"} 0+1x60`, hour, false},
		},
		"WardenIdentityErrors": {
			{"reconciler errors", `controller_runtime_reconcile_errors_total{` + job + `,controller="warden-identity"} 0+1x60`, hour, true},
			{"none", `controller_runtime_reconcile_errors_total{` + job + `,controller="warden-identity"} 0x60`, hour, false},
		},
		"WardenDenialSpike": {
			{"10x the day's rate", `warden_admission_denials_total{reason="unknown-owner"} 0+1x1440 1450+10x30`, day + 30*time.Minute, true},
			{"the day's rate, many", `warden_admission_denials_total{reason="unknown-owner"} 0+3x1470`, day + 30*time.Minute, false},
			{"a new reason, many", `warden_admission_denials_total{reason="unknown-owner"} 0+1x1470` + "\n" + `warden_admission_denials_total{reason="host-path"} _x1450 0+5x20`, day + 30*time.Minute, true},
			{"a new reason, a few", `warden_admission_denials_total{reason="host-path"} _x1450 0+0.5x20`, day + 30*time.Minute, false},
		},
		"WardenBrokerErrors": {
			{"storage credentials answer 503", `warden_broker_requests_total{route="/v1/storage/credentials",code="503"} 0+1x60`, hour, true},
			{"IAM refuses binds (502)", `warden_broker_requests_total{route="/v1/identity/gcp",code="502"} 0+1x60`, hour, true},
			{"storage not enabled (501) and refusals", `warden_broker_requests_total{route="/v1/storage/credentials",code="501"} 0+1x60` + "\n" +
				`warden_broker_requests_total{route="/v1/grants/check",code="403"} 0+5x60`, hour, false},
			{"an outage that ended 20 minutes ago", `warden_broker_requests_total{route="/v1/grants/check",code="503"} 0+1x40 40x20`, hour, false},
		},
		"WardenCertificateExpiresSoon": {
			{"10 days left", expiry(10 * day), hour, true},
			{"30 days left", expiry(30 * day), hour, false},
			{"unreadable is another alert", `warden_certificate_expiry_timestamp_seconds{pod="a"} 0x60`, hour, false},
		},
		"WardenCertificateExpiresVerySoon": {
			{"2 days left", expiry(2 * day), hour, true},
			{"10 days left", expiry(10 * day), hour, false},
		},
		"WardenCertificateUnreadable": {
			{"no certificate", `warden_certificate_expiry_timestamp_seconds{pod="a"} 0x60`, hour, true},
			{"a certificate", expiry(300 * day), hour, false},
		},
		"WardenStorageCredentialsUnavailable": {
			{"IAM Credentials or STS down", `warden_storage_credentials_total{access="read",result="unavailable"} 0+1x60`, hour, true},
			{"signing during an outage", `warden_storage_signed_urls_total{method="GET",result="unavailable"} 0+1x60`, hour, true},
			{"refusals, errors and successes are no outage", `warden_storage_credentials_total{access="read",result="denied"} 0+1x60` + "\n" +
				`warden_storage_credentials_total{access="read",result="minted"} 0+5x60` + "\n" + `warden_storage_signed_urls_total{method="PUT",result="error"} 0+1x60`, hour, false},
			{"an outage that ended 30 minutes ago", `warden_storage_credentials_total{access="read",result="unavailable"} 0+1x30 30x30`, hour, false},
		},
		"WardenStorageGCPDenied": {
			{"one denied credential", `warden_storage_credentials_total{access="read",result="denied"} 0x50 1x10`, hour, true},
			{"the first denial, which creates the series", `warden_storage_credentials_total{access="upload",result="denied"} _x55 1x5`, hour, true},
			{"one denied signed URL, a new series", `warden_storage_signed_urls_total{method="PUT",result="denied"} _x58 1x2`, hour, true},
			{"the last denial 25 minutes ago", `warden_storage_credentials_total{access="read",result="denied"} 0x35 1x25` + "\n" +
				`warden_storage_signed_urls_total{method="GET",result="denied"} 1x60`, hour, false},
			{"outages and errors are no denial", `warden_storage_credentials_total{access="read",result="unavailable"} 0+1x60` + "\n" +
				`warden_storage_signed_urls_total{method="GET",result="error"} _x55 1x5`, hour, false},
		},
		"WardenStorageMintSlow": {
			{"p99 2.1 s", mintLatency("0+97x60", "0+100x60"), hour, true},
			{"p99 1.9 s", mintLatency("0+98x60", "0+100x60"), hour, false},
			{"no mint at all (all cached)", mintLatency("0x60", "0x60"), hour, false},
		},
		"WardenBrokerUnavailable": {
			{"stage answers 503", `warden_sidecar_requests_total{route="/v1/datasets/{id}/stage",code="503"} 0+1x60`, hour, true},
			{"refusals are not outages", `warden_sidecar_requests_total{route="/v1/datasets/{id}/access",code="403"} 0+1x60`, hour, false},
		},
		"WardenVaultErrors": {
			{"Vault unavailable", `warden_sidecar_requests_total{route="/v1/secrets/{key}",code="503"} 0+1x60`, hour, true},
			{"secrets not enabled (501) is no error", `warden_sidecar_requests_total{route="/v1/secrets",code="501"} 0+1x60`, hour, false},
			{"a missing key", `warden_sidecar_requests_total{route="/v1/secrets/{key}",code="404"} 0+1x60`, hour, false},
		},
		"WardenIAMErrors": {
			{"IAM refuses", `warden_sidecar_requests_total{route="/v1/identity/gcp",code="502"} 0+1x60`, hour, true},
			{"not a member", `warden_sidecar_requests_total{route="/v1/identity/gcp",code="403"} 0+1x60`, hour, false},
		},
		"WardenSidecarInternalErrors": {
			{"500s", `warden_sidecar_requests_total{route="/v1/datasets",code="500"} 0+1x60`, hour, true},
			{"501s", `warden_sidecar_requests_total{route="/v1/secrets",code="501"} 0+1x60`, hour, false},
		},
	}
	for alert := range exprs {
		assert.Contains(t, cases, alert, "alert %s has no scenario", alert)
	}
	engine := promqltest.NewTestEngineWithOpts(t, promql.EngineOpts{MaxSamples: 1e6, Timeout: time.Minute, LookbackDelta: 5 * time.Minute, Parser: promqlParser})
	for alert, scenarios := range cases {
		expr, ok := exprs[alert]
		if !assert.True(t, ok, "no alert %s", alert) {
			continue
		}
		for _, s := range scenarios {
			t.Run(alert+"/"+s.name, func(t *testing.T) {
				// One load command per series, in the order written: series in one command are
				// appended in map order, and a series starting at 0 appended after one that ends
				// a day later is out of the head's bounds.
				var script strings.Builder
				for _, line := range strings.Split(s.series, "\n") {
					if line = strings.TrimSpace(line); line != "" {
						script.WriteString("load 1m\n  " + line + "\n\n")
					}
				}
				store := promqltest.LoadedStorage(t, script.String())
				t.Cleanup(func() { store.Close() })
				q, err := engine.NewInstantQuery(context.Background(), store, nil, expr, time.Unix(0, 0).Add(s.at))
				require.NoError(t, err)
				res := q.Exec(context.Background())
				require.NoError(t, res.Err)
				vec, err := res.Vector()
				require.NoError(t, err)
				if s.fires {
					assert.NotEmpty(t, vec, "%s should fire", alert)
				} else {
					assert.Empty(t, vec, "%s should not fire", alert)
				}
			})
		}
	}
}

// latency is controller-runtime's admission latency histogram with the given counts at
// le=0.5, le=1 and le=+Inf (le=2.5 as +Inf).
func latency(le05, le1, inf string) string {
	b := `controller_runtime_webhook_latency_seconds_bucket{` + job + `,webhook="/mutate-v1-pod",le="%s"} %s`
	return fmt.Sprintf(b, "0.5", le05) + "\n" + fmt.Sprintf(b, "1", le1) + "\n" + fmt.Sprintf(b, "2.5", inf) + "\n" + fmt.Sprintf(b, "+Inf", inf)
}

// expiry is the certificate gauge of a certificate that expires d after the evaluation time (one
// hour in).
func expiry(d time.Duration) string {
	return fmt.Sprintf(`warden_certificate_expiry_timestamp_seconds{pod="a"} %dx60`, int64((time.Hour + d).Seconds()))
}

// mintLatency is the storage mint histogram with the given counts at le=1.28 and at le=2.56
// (and +Inf): every mint takes more than 0.64 s, and none more than 2.56 s.
func mintLatency(le128, le256 string) string {
	b := `warden_storage_mint_seconds_bucket{` + job + `,le="%s"} %s`
	return fmt.Sprintf(b, "0.64", "0x60") + "\n" + fmt.Sprintf(b, "1.28", le128) + "\n" + fmt.Sprintf(b, "2.56", le256) + "\n" + fmt.Sprintf(b, "+Inf", le256)
}
