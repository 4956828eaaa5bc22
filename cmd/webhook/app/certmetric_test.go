package app

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCertExpiryMetric(t *testing.T) {
	dir := t.TempDir()
	g := certExpiry(dir)
	assert.Equal(t, 0.0, testutil.ToFloat64(g), "no certificate yet")
	out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
		"-keyout", filepath.Join(dir, "tls.key"), "-out", filepath.Join(dir, "tls.crt"), "-days", "30", "-subj", "/CN=test").CombinedOutput()
	require.NoError(t, err, "%s", out)
	got := time.Unix(int64(testutil.ToFloat64(g)), 0)
	assert.WithinDuration(t, time.Now().Add(30*24*time.Hour), got, time.Hour)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "tls.crt"), []byte("garbage"), 0o600))
	assert.Equal(t, 0.0, testutil.ToFloat64(g))
}
