package review

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	sigsjson "sigs.k8s.io/json"
)

// TestReadPodVolumes: what ReadPod keeps of each kind of volume is what the full decode has of
// it as judged() projects it (Warden's volumes whole), and what the full decode refuses in a
// field the guard reads is refused.
func TestReadPodVolumes(t *testing.T) {
	for _, tc := range []struct {
		name, volumes string
		refused       bool
	}{
		{name: "config map kept as set", volumes: `[{"name":"a","configMap":{"name":"c","items":[{"key":"k","path":"p"}],"defaultMode":420}}]`},
		{name: "every marker", volumes: `[{"name":"a","secret":{"secretName":"s"}},{"name":"b","emptyDir":{"medium":"Memory","sizeLimit":"1Gi"}},{"name":"c","downwardAPI":{"items":[]}},{"name":"d","image":{"reference":"r"}}]`},
		{name: "null sources stay nil", volumes: `[{"name":"a","configMap":null,"projected":null,"hostPath":null,"persistentVolumeClaim":null}]`},
		{name: "projected audiences and signers", volumes: `[{"name":"p","projected":{"sources":[{"serviceAccountToken":{"audience":"vault","path":"t"}},{"podCertificate":{"signerName":"warden.dev/pod"}},{"secret":{"name":"s"}},{"serviceAccountToken":null}]}}]`},
		{name: "projected without sources", volumes: `[{"name":"p","projected":{}},{"name":"q","projected":{"sources":[]}}]`},
		{name: "claim", volumes: `[{"name":"c","persistentVolumeClaim":{"claimName":"share","readOnly":true}}]`},
		{name: "judged sources in full", volumes: `[{"name":"h","hostPath":{"path":"/var/lib","type":"Directory"}},{"name":"n","nfs":{"server":"s","path":"/x"}},{"name":"c","csi":{"driver":"d","volumeAttributes":{"a":"b"}}},{"name":"e","ephemeral":{"volumeClaimTemplate":{"spec":{"dataSource":{"kind":"PersistentVolumeClaim","name":"share"}}}}},{"name":"g","gitRepo":{"repository":"r"}},{"name":"i","iscsi":{"targetPortal":"t","iqn":"q","lun":0}}]`},
		{name: "name after the source", volumes: `[{"configMap":{"name":"c"},"name":"a"}]`},
		{name: "warden volume whole", volumes: `[{"name":"warden-token","projected":{"defaultMode":420,"sources":[{"serviceAccountToken":{"audience":"vault","expirationSeconds":600,"path":"token"}}]}},{"configMap":{"name":"c","defaultMode":292},"name":"warden-x"}]`},
		{name: "unknown keys skipped", volumes: `[{"name":"a","futureSource":{"x":1},"ConfigMap":{"name":"case variant"}}]`},
		{name: "empty list", volumes: `[]`},
		{name: "null list", volumes: `null`},
		{name: "marker not an object", volumes: `[{"name":"a","configMap":5}]`, refused: true},
		{name: "repeated name", volumes: `[{"name":"a","name":"warden-x"}]`, refused: true},
		{name: "repeated source", volumes: `[{"name":"a","hostPath":{"path":"/"},"hostPath":null}]`, refused: true},
		{name: "repeated audience", volumes: `[{"name":"p","projected":{"sources":[{"serviceAccountToken":{"audience":"a","audience":"vault"}}]}}]`, refused: true},
		{name: "audience not a string", volumes: `[{"name":"p","projected":{"sources":[{"serviceAccountToken":{"audience":7}}]}}]`, refused: true},
		{name: "claim name not a string", volumes: `[{"name":"c","persistentVolumeClaim":{"claimName":true}}]`, refused: true},
		{name: "warden volume with a wrong type", volumes: `[{"name":"warden-x","configMap":{"defaultMode":"x"}}]`, refused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := []byte(`{"metadata":{},"spec":{"containers":[{"name":"c"}],"volumes":` + tc.volumes + `}}`)
			got, err := ReadPod(raw)
			if tc.refused {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			var full corev1.Pod
			require.NoError(t, sigsjson.UnmarshalCaseSensitivePreserveInts(raw, &full))
			assert.Equal(t, judgedVolumes(full.Spec.Volumes), got.Spec.Volumes)
		})
	}
}

// TestUnquote: a string token decodes as encoding/json decodes it, remembered or not.
func TestUnquote(t *testing.T) {
	long := strings.Repeat(`\"x\u00e9\ud83d\ude00 \ud800 `+"\xff", 8)
	for _, tok := range []string{`"a\nb"`, `"é"`, `"` + long + `"`, `"` + strings.Repeat("\xff", 100) + `"`} {
		var want string
		require.NoError(t, json.Unmarshal([]byte(tok), &want))
		for range 2 {
			got, err := unquote([]byte(tok))
			require.NoError(t, err)
			assert.Equal(t, want, got)
		}
	}
}
