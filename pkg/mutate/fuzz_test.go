package mutate

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	jsonpatch "github.com/evanphx/json-patch/v5"
	corev1 "k8s.io/api/core/v1"

	"github.com/warden-dev/warden/pkg/api"
)

// FuzzMutate feeds arbitrary pod JSON through the handler. Whatever comes in, the handler must
// not panic, and when it patches: only add operations, the patch applies to the raw object, the
// result keeps Warden's isolation (only the sidecar mounts the share, state and token), and a
// second pass over the result changes nothing.
func FuzzMutate(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/golden/*.pod.json")
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"spec":{"containers":[{"name":"a","volumeMounts":null,"env":null}],"volumes":null},"metadata":{"annotations":null}}`))
	f.Add([]byte(`{"metadata":{"annotations":{"warden.dev/status":"{}"}},"spec":{"serviceAccountName":"svc-prod-app-1"}}`))
	h := newTestHandler(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		resp := admit(t, h, request("apps", raw))
		if !resp.Allowed || len(resp.Patches) == 0 {
			return
		}
		for _, op := range resp.Patches {
			if op.Operation != "add" {
				t.Fatalf("non-add operation %v", op)
			}
		}
		p, err := jsonpatch.DecodePatch(resp.Patch)
		if err != nil {
			t.Fatal(err)
		}
		out, err := p.Apply(raw)
		if err != nil {
			t.Fatalf("patch does not apply: %v\npatch: %s\nraw: %s", err, resp.Patch, raw)
		}
		var pod corev1.Pod
		if err := json.Unmarshal(out, &pod); err != nil {
			t.Fatalf("patched object is not a pod: %v", err)
		}
		for _, nc := range allContainers(&pod.Spec) {
			if nc.c.Name == api.SidecarName {
				continue
			}
			for _, m := range nc.c.VolumeMounts {
				if m.Name == api.VolumeSnapshots || m.Name == api.VolumeState || m.Name == api.VolumeToken || (m.Name == api.VolumeStaging && !m.ReadOnly) {
					t.Fatalf("%s mounts %s after injection", nc.c.Name, m.Name)
				}
			}
		}
		again := admit(t, h, request("apps", out))
		if !again.Allowed || len(again.Patches) != 0 {
			t.Fatalf("second pass not empty: allowed=%v patches=%v result=%v\npod: %s", again.Allowed, again.Patches, again.Result, out)
		}
	})
}
