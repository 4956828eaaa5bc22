package review

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"

	"github.com/warden-dev/warden/pkg/guard"
)

const (
	sidecarJSON = `{"name":"warden-sidecar","image":"w:1","args":["--owner=apps/a"],"env":[{"name":"A","value":"1"}],"securityContext":{"runAsNonRoot":true}}`
	volumeJSON  = `{"name":"warden-token","projected":{"sources":[{"serviceAccountToken":{"audience":"vault","path":"token"}}]}}`
)

func partsPod(sidecar, volume string) []byte {
	return []byte(`{"metadata":{},"spec":{"initContainers":[` + sidecar + `],"containers":[{"name":"app"},` + sidecar + `],"volumes":[{"name":"v","emptyDir":{}},` + volume + `]}}`)
}

// checkEncodings: the pod decodes as the reference has it, and each encoding ReadPod hands the
// guard is the guard's own encoding of the part as decoded.
func checkEncodings(t *testing.T, raw []byte) Pod {
	t.Helper()
	got, err := ReadPod(raw)
	require.NoError(t, err)
	var full corev1.Pod
	require.NoError(t, sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &full))
	require.Equal(t, judged(&full), got.Pod)
	for _, at := range []struct {
		init bool
		c    *corev1.Container
	}{{true, &got.Spec.InitContainers[0]}, {false, &got.Spec.Containers[1]}} {
		want, err := guard.ContainerEncoding(at.c)
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got.Parts.Container(at.init, map[bool]int{true: 0, false: 1}[at.init])))
	}
	want, err := guard.VolumeEncoding(&got.Spec.Volumes[1])
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got.Parts.Volume(1)))
	assert.Nil(t, got.Parts.Volume(0), "not Warden's")
	assert.Nil(t, got.Parts.Container(false, 0), "not the sidecar")
	return got
}

func TestRememberedParts(t *testing.T) {
	raw := partsPod(sidecarJSON, volumeJSON)
	first := checkEncodings(t, raw)
	// What a pod is given is its own: changing it changes no other pod's decoding.
	first.Spec.Containers[1].Env[0].Value = "changed"
	first.Spec.Volumes[1].Projected.Sources[0].ServiceAccountToken.Audience = "changed"
	checkEncodings(t, raw)
	// Parts that differ by a byte are decoded as they are, never as the remembered ones.
	for _, tc := range []struct{ name, sidecar, volume string }{
		{"one more env", strings.Replace(sidecarJSON, `"value":"1"}`, `"value":"1"},{"name":"B"}`, 1), volumeJSON},
		{"another image", strings.Replace(sidecarJSON, `w:1`, `w:2`, 1), volumeJSON},
		{"another audience", sidecarJSON, strings.Replace(volumeJSON, `"vault"`, `"broker"`, 1)},
		{"whitespace", strings.Replace(sidecarJSON, `,"image"`, ` ,"image"`, 1), strings.Replace(volumeJSON, `,"projected"`, ` ,"projected"`, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) { checkEncodings(t, partsPod(tc.sidecar, tc.volume)) })
	}
}

func TestPartCacheBounds(t *testing.T) {
	big := []byte(strings.Repeat("x", maxPartSize+1))
	remember(big, &part{})
	assert.Nil(t, cachedPart(big), "too large to remember")
	for i := 0; i <= maxParts; i++ {
		remember([]byte(strings.Repeat("y", i+1)), &part{})
	}
	assert.LessOrEqual(t, parts.Len(), maxParts)
}
