package scope_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/warden-dev/warden/internal/testing/admissiontest"
	"github.com/warden-dev/warden/pkg/admission/scope"
	"github.com/warden-dev/warden/pkg/guard"
)

func TestInScope(t *testing.T) {
	s, err := scope.New([]string{"batch"}, admissiontest.OwnNamespace, admissiontest.StaticNamespaces{
		"apps": admissiontest.OptedIn, "batch": admissiontest.OptedIn, "plain": {},
		"kube-system": admissiontest.OptedIn, admissiontest.OwnNamespace: admissiontest.OptedIn,
	}, nil, nil)
	require.NoError(t, err)
	for _, tc := range []struct {
		ns, why string
		err     bool
	}{
		{ns: "apps"},
		{ns: "plain", why: "namespace is not opted in"},
		{ns: "batch", why: "namespace is exempt from Warden"},
		{ns: "kube-system", why: "namespace is exempt from Warden"},
		{ns: admissiontest.OwnNamespace, why: "namespace is exempt from Warden"},
		{ns: "ghost", err: true},
	} {
		why, err := s.InScope(context.Background(), tc.ns)
		assert.Equal(t, tc.err, err != nil, "%s: %v", tc.ns, err)
		assert.Equal(t, tc.why, why, tc.ns)
	}
}

func TestNewRefuses(t *testing.T) {
	_, err := scope.New([]string{"a", ""}, "", admissiontest.Namespaces(), nil, nil)
	assert.ErrorContains(t, err, "empty name")
	_, err = scope.New(nil, "", nil, nil, nil)
	assert.ErrorContains(t, err, "namespace lookup")
}

func TestServe(t *testing.T) {
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{UID: "u", Namespace: "apps"}}
	for _, tc := range []struct {
		name    string
		decide  scope.Decision
		allowed bool
		code    int32
		outcome string
		reason  string
	}{
		{"denied", func(context.Context, admission.Request, *string) (admission.Response, string, string) {
			return scope.Denied(guard.Deny("r1", "no %s", "way"))
		}, false, 403, scope.OutcomeDenied, "r1"},
		{"skipped", func(context.Context, admission.Request, *string) (admission.Response, string, string) {
			return scope.Skipped("elsewhere")
		}, true, 200, scope.OutcomeSkipped, ""},
		{"errored", func(context.Context, admission.Request, *string) (admission.Response, string, string) {
			return scope.Errored(500, errors.New("down"))
		}, false, 500, scope.OutcomeError, ""},
		{"panic", func(context.Context, admission.Request, *string) (admission.Response, string, string) {
			panic("boom")
		}, false, 500, scope.OutcomeError, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, reg := admissiontest.Metrics()
			s, err := scope.New(nil, "", admissiontest.Namespaces(), nil, m)
			require.NoError(t, err)
			resp := s.Serve(context.Background(), req, tc.decide)
			assert.Equal(t, tc.allowed, resp.Allowed)
			assert.Equal(t, tc.code, resp.Result.Code)
			assert.Equal(t, 1.0, admissiontest.Count(t, reg, "warden_admission_requests_total", tc.outcome))
			if tc.reason != "" {
				assert.Equal(t, "warden: no way", resp.Result.Message)
				assert.Equal(t, 1.0, admissiontest.Count(t, reg, "warden_admission_denials_total", tc.reason))
			}
		})
	}
}
