package chart

import (
	"fmt"
	"maps"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/warden-dev/warden/pkg/admission/scope"
	"github.com/warden-dev/warden/pkg/contract"
)

// promqlParser is Prometheus's own PromQL parser with its default options: stable functions only, as a
// Prometheus server without feature flags accepts.
var promqlParser = parser.NewParser(parser.Options{})

func monitoringDir() string { return filepath.Join(repoRoot(), "manifests", "monitoring") }

// monitoring is manifests/monitoring as kustomize builds it, each object decoded strictly into
// the Prometheus Operator's own Go types (an unknown or misspelt field fails).
type monitoring struct {
	rule    *monitoringv1.PrometheusRule
	monitor *monitoringv1.ServiceMonitor
	pods    *monitoringv1.PodMonitor
	service *corev1.Service
}

func loadMonitoring(t *testing.T) monitoring {
	t.Helper()
	var m monitoring
	for _, o := range kustomize(t, monitoringDir()) {
		raw, err := yaml.Marshal(map[string]any(o))
		require.NoError(t, err)
		var into any
		switch {
		case o.apiVersion() == "monitoring.coreos.com/v1" && o.kind() == "PrometheusRule":
			m.rule = &monitoringv1.PrometheusRule{}
			into = m.rule
		case o.apiVersion() == "monitoring.coreos.com/v1" && o.kind() == "ServiceMonitor":
			m.monitor = &monitoringv1.ServiceMonitor{}
			into = m.monitor
		case o.apiVersion() == "monitoring.coreos.com/v1" && o.kind() == "PodMonitor":
			m.pods = &monitoringv1.PodMonitor{}
			into = m.pods
		case o.apiVersion() == "v1" && o.kind() == "Service":
			m.service = &corev1.Service{}
			into = m.service
		default:
			t.Fatalf("unexpected object in manifests/monitoring: %s", o.id())
		}
		require.NoError(t, yaml.UnmarshalStrict(raw, into), "%s: strict decode", o.id())
		assert.Equal(t, "warden-system", o.namespace(), o.id())
	}
	require.NotNil(t, m.rule, "a PrometheusRule")
	require.NotNil(t, m.monitor, "a ServiceMonitor")
	require.NotNil(t, m.service, "the metrics Service")
	require.NotNil(t, m.pods, "the sidecars' PodMonitor")
	return m
}

// The ServiceMonitor scrapes the webhook's /metrics: its Service selects the webhook's pods and
// exposes the Deployment's health port, and the rules' job label is that Service.
func TestServiceMonitorScrapesTheWebhook(t *testing.T) {
	m := loadMonitoring(t)
	base := kustomize(t, filepath.Join(repoRoot(), "manifests", "base"))
	dep := find(t, base, "Deployment", "warden-webhook")

	podLabels := dig(dep, "spec", "template", "metadata", "labels").(map[string]any)
	for k, v := range m.service.Spec.Selector {
		assert.Equal(t, v, podLabels[k], "the metrics Service selects the webhook's pods (%s)", k)
	}
	require.Len(t, m.service.Spec.Ports, 1)
	port := m.service.Spec.Ports[0]
	var healthPort float64
	for _, p := range dig(dep, "spec", "template", "spec", "containers", 0, "ports").([]any) {
		if p.(map[string]any)["name"] == port.TargetPort.String() {
			healthPort = p.(map[string]any)["containerPort"].(float64)
		}
	}
	assert.Equal(t, float64(8081), healthPort, "targetPort %s is the webhook's --health-listen port", port.TargetPort.String())
	assert.Contains(t, containerArgs(t, base), "--health-listen=:8081")

	for k, v := range m.monitor.Spec.Selector.MatchLabels {
		assert.Equal(t, v, m.service.Labels[k], "the ServiceMonitor selects the metrics Service (%s)", k)
	}
	assert.Equal(t, []string{"warden-system"}, m.monitor.Spec.NamespaceSelector.MatchNames)
	require.Len(t, m.monitor.Spec.Endpoints, 1)
	ep := m.monitor.Spec.Endpoints[0]
	assert.Equal(t, port.Name, ep.Port)
	assert.Equal(t, "/metrics", ep.Path)
	assert.Empty(t, m.monitor.Spec.JobLabel, "the job label is the Service's name, which the rules name")
}

// The PodMonitor scrapes what an injected sidecar serves with --sidecar-metrics-port: the port
// the webhook names (contract.PortMetrics; pkg/admission/mutate's TestSidecarMetricsPort), in the
// sidecar container only, in every namespace.
func TestPodMonitorScrapesSidecars(t *testing.T) {
	m := loadMonitoring(t)
	assert.True(t, m.pods.Spec.NamespaceSelector.Any)
	require.Len(t, m.pods.Spec.PodMetricsEndpoints, 1)
	ep := m.pods.Spec.PodMetricsEndpoints[0]
	require.NotNil(t, ep.Port)
	assert.Equal(t, contract.PortMetrics, *ep.Port)
	assert.Equal(t, "/metrics", ep.Path)
	require.Len(t, ep.RelabelConfigs, 1)
	keep := ep.RelabelConfigs[0]
	assert.Equal(t, "keep", strings.ToLower(keep.Action))
	assert.Equal(t, []monitoringv1.LabelName{"__meta_kubernetes_pod_container_name"}, keep.SourceLabels)
	assert.Equal(t, contract.SidecarName, keep.Regex)
}

// Every rule is well formed: an alert name, an expression Prometheus parses, a `for`, a severity,
// a summary and a description whose templates parse.
func TestPrometheusRulesParse(t *testing.T) {
	m := loadMonitoring(t)
	names := map[string]bool{}
	n := 0
	for _, g := range m.rule.Spec.Groups {
		for _, r := range g.Rules {
			n++
			assert.NotEmpty(t, r.Alert, "group %s: only alerting rules", g.Name)
			assert.False(t, names[r.Alert], "alert %s defined twice", r.Alert)
			names[r.Alert] = true
			_, err := promqlParser.ParseExpr(r.Expr.String())
			assert.NoError(t, err, "%s: expr", r.Alert)
			if assert.NotNil(t, r.For, r.Alert) {
				_, err := model.ParseDuration(string(*r.For))
				assert.NoError(t, err, "%s: for", r.Alert)
			}
			assert.Contains(t, []string{"warning", "critical"}, r.Labels["severity"], "%s: severity", r.Alert)
			for _, a := range []string{"summary", "description"} {
				assert.NotEmpty(t, r.Annotations[a], "%s: %s", r.Alert, a)
			}
		}
	}
	// What the issue asks to be alerted on, each by at least one rule.
	for _, want := range []string{"WardenWebhookDown", "WardenAdmissionErrors", "WardenWebhookHTTPErrors", "WardenPolicyUnhealthy",
		"WardenDenialSpike", "WardenBrokerUnavailable", "WardenVaultErrors", "WardenIAMErrors", "WardenIdentityErrors", "WardenCertificateExpiresSoon",
		"WardenStorageCredentialsUnavailable", "WardenStorageGCPDenied", "WardenStorageMintSlow"} {
		assert.True(t, names[want], "alert %s", want)
	}
	assert.Greater(t, n, 10)
}

// exported is what a scrape says a component exports: the series names Prometheus stores (a
// histogram's _bucket, _sum and _count; a summary's quantiles, _sum and _count), and for each the
// label names and the values seen.
type exported map[string]map[string]map[string]bool

func seriesOf(families ...map[string]*dto.MetricFamily) exported {
	out := exported{}
	add := func(name string, m *dto.Metric, extra ...string) {
		if out[name] == nil {
			out[name] = map[string]map[string]bool{}
		}
		for _, l := range m.Label {
			if out[name][l.GetName()] == nil {
				out[name][l.GetName()] = map[string]bool{}
			}
			out[name][l.GetName()][l.GetValue()] = true
		}
		for _, e := range extra {
			if out[name][e] == nil {
				out[name][e] = map[string]bool{}
			}
		}
	}
	for _, fams := range families {
		for name, f := range fams {
			for _, m := range f.Metric {
				switch f.GetType() {
				case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
					add(name+"_bucket", m, "le")
					add(name+"_sum", m)
					add(name+"_count", m)
				case dto.MetricType_SUMMARY:
					add(name, m, "quantile")
					add(name+"_sum", m)
					add(name+"_count", m)
				default:
					add(name, m)
				}
			}
		}
	}
	return out
}

// Labels every scraped series carries, from Prometheus and the ServiceMonitor's target.
var targetLabels = []string{"job", "instance", "namespace", "pod", "service", "endpoint", "container"}

// Label values that appear only after an event this test does not cause (an admission error, a
// broker outage): each from the code that sets it, so a renamed value fails here.
var eventOnlyValues = map[string]map[string][]string{
	"warden_admission_requests_total": {"outcome": {scope.OutcomeInjected, scope.OutcomeUnchanged, scope.OutcomeAllowed, scope.OutcomeSkipped, scope.OutcomeDenied, scope.OutcomeError}},
}

// httpCodeLabels are label values that are HTTP status codes.
var httpCodeLabels = map[string]string{"controller_runtime_webhook_requests_total": "code", "warden_sidecar_requests_total": "code", "warden_broker_requests_total": "code"}

func knownValues(ex exported, metric, label string) []string {
	var vs []string
	for v := range ex[metric][label] {
		vs = append(vs, v)
	}
	vs = append(vs, eventOnlyValues[metric][label]...)
	if httpCodeLabels[metric] == label {
		for c := 100; c < 600; c++ {
			if http.StatusText(c) != "" {
				vs = append(vs, strconv.Itoa(c))
			}
		}
	}
	return vs
}

// Every metric a rule reads is exported by Warden: the webhook and a sidecar are started, driven
// (admissions allowed and refused, sidecar requests) and scraped, and each expression's
// selectors, label matchers and grouping labels are checked against what they export.
func TestRulesReadOnlyExportedMetrics(t *testing.T) {
	m := loadMonitoring(t)
	webhookFams, sidecarFams := scrapeWarden(t)
	webhook, sidecar := seriesOf(webhookFams), seriesOf(sidecarFams)
	all := seriesOf(webhookFams, sidecarFams)
	job := m.service.Name

	// The scrape itself holds what the rules need: not a vacuous pass.
	for _, name := range []string{"warden_admission_requests_total", "warden_admission_denials_total", "warden_certificate_expiry_timestamp_seconds",
		"warden_policy_healthy", "controller_runtime_webhook_requests_total", "controller_runtime_webhook_latency_seconds_bucket", "controller_runtime_reconcile_errors_total"} {
		require.Contains(t, webhook, name, "the webhook exports %s", name)
	}
	require.Contains(t, sidecar, "warden_sidecar_requests_total")
	// The storage counters, with every result the broker's storage requests caused (the
	// storage alerts match on result).
	for name, results := range map[string][]string{
		"warden_storage_credentials_total": {"minted", "cached", "unavailable", "denied"},
		"warden_storage_signed_urls_total": {"ok", "unavailable", "denied"},
	} {
		require.Contains(t, webhook, name, "the webhook exports %s", name)
		t.Logf("%s: results %v", name, slices.Sorted(maps.Keys(webhook[name]["result"])))
		for _, r := range results {
			assert.True(t, webhook[name]["result"][r], "%s{result=%q} after the storage requests (seen: %v)", name, r, webhook[name]["result"])
		}
	}
	require.Contains(t, webhook, "warden_storage_mint_seconds_bucket")
	assert.Positive(t, webhookFams["warden_storage_mint_seconds"].Metric[0].GetHistogram().GetSampleCount(), "a credential was minted")
	expiry := webhookFams["warden_certificate_expiry_timestamp_seconds"].Metric[0].GetGauge().GetValue()
	assert.InDelta(t, float64(time.Now().AddDate(0, 0, 365).Unix()), expiry, 2*86400, "the expiry gauge is the serving certificate's")

	for _, g := range m.rule.Spec.Groups {
		for _, r := range g.Rules {
			expr, err := promqlParser.ParseExpr(r.Expr.String())
			require.NoError(t, err, r.Alert)
			var selectors int
			parser.Inspect(expr, func(node parser.Node, path []parser.Node) error {
				switch n := node.(type) {
				case *parser.VectorSelector:
					selectors++
					checkSelector(t, r.Alert, g.Name, n, job, all, webhook, sidecar)
				case *parser.AggregateExpr:
					if n.Without {
						break
					}
					metrics := metricsIn(n.Expr)
					for _, l := range n.Grouping {
						ok := slices.Contains(targetLabels, l) || slices.ContainsFunc(metrics, func(name string) bool { _, has := all[name][l]; return has })
						assert.True(t, ok, "%s: by (%s): no metric of %v has label %s", r.Alert, l, metrics, l)
					}
				}
				return nil
			})
			assert.Positive(t, selectors, "%s reads no metric", r.Alert)
		}
	}
}

func metricsIn(e parser.Expr) []string {
	var out []string
	parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			out = append(out, vs.Name)
		}
		return nil
	})
	return out
}

func checkSelector(t *testing.T, alert, group string, vs *parser.VectorSelector, job string, all, webhook, sidecar exported) {
	t.Helper()
	where := fmt.Sprintf("%s: %s", alert, vs.String())
	if !assert.NotEmpty(t, vs.Name, "%s: select a metric by name", where) {
		return
	}
	var jobMatcher *labels.Matcher
	for _, lm := range vs.LabelMatchers {
		if lm.Name == "job" {
			jobMatcher = lm
		}
	}
	if vs.Name == "up" {
		// Prometheus's own series for each target: only meaningful for the webhook's job.
		if assert.NotNil(t, jobMatcher, "%s: up needs the job", where) {
			assert.Equal(t, labels.MatchEqual, jobMatcher.Type, where)
			assert.Equal(t, job, jobMatcher.Value, "%s: job is the metrics Service", where)
		}
		return
	}
	_, fromWebhook := webhook[vs.Name]
	_, fromSidecar := sidecar[vs.Name]
	if !assert.True(t, fromWebhook || fromSidecar, "%s: %s is exported by neither the webhook nor the sidecar", where, vs.Name) {
		return
	}
	// The sidecar's metrics are read in the sidecar group only; the webhook's elsewhere.
	if fromSidecar && !fromWebhook {
		assert.Equal(t, "warden-sidecar", group, "%s: a sidecar metric outside the group warden-sidecar", where)
	} else {
		assert.Equal(t, "warden-webhook", group, "%s: a webhook metric outside the group warden-webhook", where)
	}
	if jobMatcher != nil {
		assert.Equal(t, job, jobMatcher.Value, "%s: job is the metrics Service", where)
	} else {
		// Metrics not Warden's own (controller-runtime's, Go's) exist in other jobs too.
		assert.True(t, strings.HasPrefix(vs.Name, "warden_"), "%s: %s is not Warden's own: select job=%q", where, vs.Name, job)
	}
	for _, lm := range vs.LabelMatchers {
		if lm.Name == labels.MetricName || lm.Name == "job" {
			continue
		}
		if slices.Contains(targetLabels, lm.Name) {
			continue
		}
		values, ok := all[vs.Name][lm.Name]
		if !assert.True(t, ok, "%s: %s has no label %s", where, vs.Name, lm.Name) {
			continue
		}
		_ = values
		known := knownValues(all, vs.Name, lm.Name)
		switch lm.Type {
		case labels.MatchEqual:
			assert.Contains(t, known, lm.Value, "%s: %s=%q is a value %s never has", where, lm.Name, lm.Value, vs.Name)
		case labels.MatchRegexp:
			re := regexp.MustCompile("^(?:" + lm.Value + ")$")
			assert.True(t, slices.ContainsFunc(known, re.MatchString), "%s: %s=~%q matches no value of %s (%v)", where, lm.Name, lm.Value, vs.Name, known)
		}
	}
}
