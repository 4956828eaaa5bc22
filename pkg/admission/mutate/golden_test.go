package mutate

import (
	"bytes"
	"encoding/json"
	"flag"
	"github.com/warden-dev/warden/internal/testing/admissiontest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGolden pins the exact patch for representative pods. Files named legacy-* run with the
// sidecar as a regular container. Run `go test ./pkg/admission/mutate -run Golden -update` after an
// intended change and review the diff.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob("testdata/golden/*.pod.json")
	require.NoError(t, err)
	require.NotEmpty(t, inputs)
	for _, in := range inputs {
		name := strings.TrimSuffix(filepath.Base(in), ".pod.json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			require.NoError(t, err)
			var meta struct {
				Metadata struct{ Namespace string } `json:"metadata"`
			}
			require.NoError(t, json.Unmarshal(raw, &meta))
			h := newTestHandler(t, func(c *Config) { c.NativeSidecar = !strings.HasPrefix(name, "legacy-") })
			resp := admissiontest.Admit(t, h, admissiontest.Request(meta.Metadata.Namespace, raw))
			require.True(t, resp.Allowed, "%v", resp.Result)
			var got bytes.Buffer
			require.NoError(t, json.Indent(&got, resp.Patch, "", "  "))
			got.WriteByte('\n')
			golden := filepath.Join("testdata/golden", name+".patch.json")
			if *update {
				require.NoError(t, os.WriteFile(golden, got.Bytes(), 0o644))
			}
			want, err := os.ReadFile(golden)
			require.NoError(t, err, "run with -update to create it")
			require.Equal(t, string(want), got.String())
			// The patch applies cleanly and a second pass is empty.
			out := admissiontest.ApplyPatch(t, raw, resp)
			require.Empty(t, admissiontest.Admit(t, h, admissiontest.Request(meta.Metadata.Namespace, out)).Patch)
		})
	}
}
