package mutate

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/internal/testing/admissiontest"
	"github.com/warden-dev/warden/pkg/admission/scope"
	"github.com/warden-dev/warden/pkg/admission/validate"
)

func testConfig(mut ...func(*Config)) Config {
	cfg := DefaultConfig()
	cfg.SidecarImage = "example.com/warden-sidecar:test"
	for _, m := range mut {
		m(&cfg)
	}
	return cfg
}

func newTestHandler(t testing.TB, mut ...func(*Config)) *Handler {
	t.Helper()
	return newMeasuredHandler(t, nil, mut...)
}

// newMeasuredHandler is newTestHandler counting into m (see admissiontest.Metrics).
func newMeasuredHandler(t testing.TB, m *scope.Metrics, mut ...func(*Config)) *Handler {
	t.Helper()
	cfg := testConfig(mut...)
	h, err := NewHandler(cfg, admissiontest.OwnNamespace, admissiontest.Policy(t), admissiontest.Namespaces(), cfg.Rules(admissiontest.Keys), nil, m)
	require.NoError(t, err)
	return h
}

func newTestValidator(t testing.TB, mut ...func(*Config)) *validate.Validator {
	t.Helper()
	cfg := testConfig(mut...)
	v, err := validate.New(cfg.ExemptNamespaces, admissiontest.OwnNamespace, admissiontest.Namespaces(), cfg.Rules(admissiontest.Keys), nil, nil)
	require.NoError(t, err)
	return v
}
