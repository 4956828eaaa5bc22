package chart

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"helm.sh/helm/v3/pkg/lint"
	"helm.sh/helm/v3/pkg/lint/support"
	"helm.sh/helm/v3/pkg/strvals"
)

// `helm lint --strict` with Helm's own linter, for the defaults and the other certificate and
// policy modes: no warning nor error, and no INFO but "icon is recommended" (the project has no
// icon to point at).
func TestHelmLint(t *testing.T) {
	for _, sets := range [][]string{
		nil,
		{"certificates.mode=cert-manager", "namespace.create=true"},
		{"certificates.mode=none", "policy.source=none"},
		{"policy.source=configMap", "policy.configMap.name=platform-policy", "gcp.identity=true", "gcp.serviceAccount=w@p.iam.gserviceaccount.com"},
		{"monitoring.enabled=true", "sidecar.metricsPort=9464"},
		{"storage.enabled=true", "storage.uploadTTL=45m", "storage.maxCommitObjects=500", "storage.endpoints.sts=https://sts.example/v1/token", "storage.endpoints.insecure=true"},
	} {
		vals := map[string]any{}
		for _, s := range sets {
			if err := strvals.ParseInto(s, vals); err != nil {
				t.Fatal(err)
			}
		}
		linter := lint.AllWithKubeVersion(chartDir(), vals, releaseNamespace, kubeVersion)
		for _, m := range linter.Messages {
			if m.Severity == support.InfoSev && strings.Contains(m.Err.Error(), "icon is recommended") {
				continue
			}
			assert.Failf(t, "helm lint", "%v: [%s] %s", sets, sevName(m.Severity), m.Error())
		}
		assert.LessOrEqual(t, linter.HighestSeverity, support.InfoSev, "%v", sets)
	}
}

func sevName(s int) string {
	return map[int]string{support.InfoSev: "INFO", support.WarningSev: "WARNING", support.ErrorSev: "ERROR"}[s]
}
