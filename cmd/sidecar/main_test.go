package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every mistake is reported at once, not the first only.
func TestFlagsReportEveryMistake(t *testing.T) {
	_, err := parseFlags([]string{"--owner=svc-1", "--environment=staging", "--workload=batch", "--listen=0.0.0.0:8787"})
	require.Error(t, err)
	for _, want := range []string{"--owner", "not one of dev, test, prod", "--workload", "not a loopback address"} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestFlags(t *testing.T) {
	base := []string{"--owner=apps/svc-1", "--environment=prod"}
	o, err := parseFlags(base)
	require.NoError(t, err)
	assert.Equal(t, "127.0.0.1:8787", o.Listen)

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--environment=prod"}, "--owner"},
		{[]string{"--owner=svc-1", "--environment=prod"}, "NAMESPACE/NAME"},
		{[]string{"--owner=apps/svc-1", "--environment=staging"}, "not one of dev, test, prod"},
		{append(base, "--listen=0.0.0.0:8787"), "not a loopback address"},
		{append(base, "--listen=:8787"), "not a loopback address"},
		{append(base, "--listen=10.0.0.1:8787"), "not a loopback address"},
		{append(base, "--listen=localhost"), "--listen"},
		{append(base, "--metrics-listen=9464"), "--metrics-listen"},
		{append(base, "--metrics-listen=:0"), "port must be 1-65535"},
		{append(base, "--metrics-listen=:http"), "port must be 1-65535"},
	} {
		_, err := parseFlags(tc.args)
		require.Error(t, err, "%v", tc.args)
		assert.Contains(t, err.Error(), tc.want)
	}
	o, err = parseFlags(append(base, "--listen=[::1]:9000"))
	require.NoError(t, err)
	assert.Equal(t, "[::1]:9000", o.Listen)
	_, err = parseFlags(append(base, "--listen=0.0.0.0:8787", "--allow-non-loopback"))
	require.NoError(t, err, "explicit override")

	t.Setenv("WARDEN_OWNER", "ns/from-env")
	// What the webhook injects (pkg/admission/mutate's plan) reaches the options: each injected name is read.
	t.Setenv("WARDEN_POD_NAME", "etl-7")
	t.Setenv("WARDEN_POD_UID", "0c5f-uid")
	t.Setenv("WARDEN_METRICS_LISTEN", ":9464")
	o, err = parseFlags([]string{"--environment=dev"})
	require.NoError(t, err)
	assert.Equal(t, "ns/from-env", o.Owner)
	assert.Equal(t, "etl-7", o.Pod)
	assert.Equal(t, "0c5f-uid", o.PodUID)
	assert.Equal(t, ":9464", o.MetricsListen)
}
