package flagenv

import (
	"flag"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestApply(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	listen := fs.String("listen", ":1", "")
	policy := fs.String("policy-file", "", "")
	n := fs.Int("max-ttl", 1, "")
	t.Setenv("W_LISTEN", ":2")
	t.Setenv("W_POLICY_FILE", "/env")
	t.Setenv("W_MAX_TTL", "7")
	require.NoError(t, fs.Parse([]string{"--listen=:3"}))
	require.NoError(t, Apply(fs, "W_"))
	require.Equal(t, ":3", *listen, "command line wins over env")
	require.Equal(t, "/env", *policy)
	require.Equal(t, 7, *n)

	fs2 := flag.NewFlagSet("y", flag.ContinueOnError)
	fs2.Int("max-ttl", 1, "")
	t.Setenv("W_MAX_TTL", "seven")
	require.NoError(t, fs2.Parse(nil))
	require.ErrorContains(t, Apply(fs2, "W_"), "W_MAX_TTL")
}
