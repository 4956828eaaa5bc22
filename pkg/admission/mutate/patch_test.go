package mutate

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/warden-dev/warden/internal/testing/admissiontest"
	"github.com/warden-dev/warden/internal/testing/podfixture"
	"github.com/warden-dev/warden/pkg/contract"
)

// appendQuoted must give the JSON string encoding/json would read back as s, whatever s holds.
func TestAppendQuoted(t *testing.T) {
	for _, s := range []string{
		"", "plain", `{"version":"v1","seal":"a+b/c=="}`, `back\slash`, "tab\tnew\nline",
		"\x00\x1f", "é ünïcode ☃", "invalid \xff utf-8", "<html>&amp;", "\u2028",
	} {
		out := appendQuoted([]byte("prefix:"), s)
		require.Equal(t, "prefix:", string(out[:7]))
		var back string
		require.NoError(t, json.Unmarshal(out[7:], &back), "%q gave %s", s, out[7:])
		want := s
		if s == "invalid \xff utf-8" {
			want = "invalid \ufffd utf-8" // as encoding/json writes it
		}
		assert.Equal(t, want, back)
		assert.LessOrEqual(t, len(out)-7, quotedLen(s), "%q", s)
	}
}

// injectSize is what makes the patch one allocation: it must bound the patch for every shape
// of pod (containers with and without mounts and env, init containers, no annotations).
func TestInjectSizeBoundsThePatch(t *testing.T) {
	bare := admissiontest.BasePod("svc-prod-app-1")
	bare.Annotations = nil
	withInit := podfixture.Realistic("svc-prod-app-1")
	withInit.Spec.InitContainers = withInit.Spec.Containers[:2]
	for _, native := range []bool{false, true} {
		h := newTestHandler(t, func(c *Config) { c.NativeSidecar = native })
		r := h.plans.get(&h.cfg, "apps/svc-prod-app-1", "prod", contract.WorkloadApp)
		for name, pod := range map[string]any{
			"bare": bare, "realistic": podfixture.Realistic("svc-prod-app-1"),
			"large": podfixture.Large("svc-prod-app-1"), "init": withInit,
		} {
			decoded, err := decodePod(t.Context(), admissiontest.MustJSON(t, pod))
			require.NoError(t, err)
			annotation := `{"v":"` + name + `","seal":"x\"y"}`
			p := h.cfg.injectPatch(decoded.Pod, r, annotation)
			size := h.cfg.injectSize(&decoded.Spec, r, annotation)
			assert.LessOrEqual(t, len(p), size, "%s native=%v", name, native)
			assert.Less(t, size, len(p)*5/4+256, "%s native=%v: a bound, but not a wasteful one", name, native)
			var ops []map[string]any
			require.NoError(t, json.Unmarshal(p, &ops), "%s", p)
		}
	}
}
