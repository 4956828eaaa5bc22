package guard

import (
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/pkg/contract"
)

func testKeyring(t testing.TB, keys ...string) *Keyring {
	t.Helper()
	m := map[string][]byte{}
	for _, id := range keys {
		m[id] = []byte(strings.Repeat(id, MinKeyBytes)[:MinKeyBytes])
	}
	k, err := NewKeyring(m)
	require.NoError(t, err)
	return k
}

// sidecar is shaped like what Warden injects, as Warden writes it (no API-server defaults).
func sidecar() *corev1.Container {
	return &corev1.Container{
		Name: contract.SidecarName, Image: "example.com/warden-sidecar:v1", ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"/warden-sidecar"}, Args: []string{"--owner=apps/a"},
		Env: []corev1.EnvVar{{Name: "WARDEN_POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}},
		Resources: corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")},
			Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("32Mi")},
		},
		LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"/warden-sidecar", "probe"}}}, PeriodSeconds: 20, TimeoutSeconds: 2},
		Lifecycle:     &corev1.Lifecycle{PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/warden-sidecar", "probe", "--wait=1m0s"}}}},
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
		VolumeMounts:  []corev1.VolumeMount{{Name: contract.VolumeToken, MountPath: "/t", ReadOnly: true}},
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot: ptr.To(true), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
}

func wardenVolumes() []corev1.Volume {
	return []corev1.Volume{
		{Name: contract.VolumeStaging, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: contract.VolumeToken, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{
			ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: contract.TokenAudience, ExpirationSeconds: ptr.To[int64](600), Path: "token"},
		}}}}},
	}
}

func testStatus() contract.Status {
	return contract.Status{Version: "v1", Owner: "apps/a", Environment: "prod", Workload: contract.WorkloadApp, Sidecar: contract.SidecarName,
		Image: "example.com/warden-sidecar:v1", Native: true, Volumes: []string{contract.VolumeStaging, contract.VolumeToken}, Containers: []string{"app"}}
}

func seal(t testing.TB, k *Keyring, sc *corev1.Container, vols []corev1.Volume) string {
	t.Helper()
	d, err := PartsDigest(sc, vols)
	require.NoError(t, err)
	a, err := k.Annotate(testStatus(), d)
	require.NoError(t, err)
	return a
}

func verify(k *Keyring, annotation string, sc *corev1.Container, vols []corev1.Volume) error {
	_, err := k.Verify(annotation, func(contract.Status) ([32]byte, error) { return PartsDigest(sc, vols) })
	return err
}

// apiDefaults applies what the API server fills in when it stores a pod.
func apiDefaults(c *corev1.Container, vols []corev1.Volume) {
	c.TerminationMessagePath = corev1.TerminationMessagePathDefault
	c.LivenessProbe.SuccessThreshold = 1
	c.LivenessProbe.FailureThreshold = 3
	c.Env[0].ValueFrom.FieldRef.APIVersion = "v1"
	vols[1].Projected.DefaultMode = ptr.To[int32](0o644)
}

func TestSealSurvivesAPIServerDefaults(t *testing.T) {
	k := testKeyring(t, "k1")
	sc, vols := sidecar(), wardenVolumes()
	a := seal(t, k, sc, vols)
	assert.True(t, strings.HasSuffix(a, `"}`), "the seal is the status's last field")
	apiDefaults(sc, vols)
	assert.NoError(t, verify(k, a, sc, vols))

	// Limits only: the API server copies them into requests.
	only := sidecar()
	only.Resources.Requests = nil
	a = seal(t, k, only, vols)
	only.Resources.Requests = only.Resources.Limits.DeepCopy()
	assert.NoError(t, verify(k, a, only, vols))
}

func TestSealCatchesEveryChange(t *testing.T) {
	k := testKeyring(t, "k1")
	a := seal(t, k, sidecar(), wardenVolumes())
	for name, change := range map[string]func(*corev1.Container, []corev1.Volume){
		"image": func(c *corev1.Container, _ []corev1.Volume) { c.Image = "evil/sidecar:v1" },
		"a second env with the same name": func(c *corev1.Container, _ []corev1.Volume) {
			c.Env = append(c.Env, corev1.EnvVar{Name: "WARDEN_BROKER_CA", Value: "-----BEGIN CERTIFICATE-----"})
		},
		"other env": func(c *corev1.Container, _ []corev1.Volume) {
			c.Env = append(c.Env, corev1.EnvVar{Name: "HTTPS_PROXY", Value: "x"})
		},
		"envFrom": func(c *corev1.Container, _ []corev1.Volume) { c.EnvFrom = []corev1.EnvFromSource{{Prefix: "X"}} },
		"args":    func(c *corev1.Container, _ []corev1.Volume) { c.Args = append(c.Args, "--allow-non-loopback") },
		"command": func(c *corev1.Container, _ []corev1.Volume) { c.Command = []string{"/bin/sh"} },
		"preStop hook": func(c *corev1.Container, _ []corev1.Volume) {
			c.Lifecycle.PreStop = &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"cp"}}}
		},
		"probe": func(c *corev1.Container, _ []corev1.Volume) { c.LivenessProbe.PeriodSeconds = 1 },
		"mount": func(c *corev1.Container, _ []corev1.Volume) {
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "x", MountPath: "/x"})
		},
		"resources": func(c *corev1.Container, _ []corev1.Volume) {
			c.Resources.Limits[corev1.ResourceMemory] = resource.MustParse("1Mi")
		},
		"securityContext": func(c *corev1.Container, _ []corev1.Volume) { c.SecurityContext.RunAsUser = ptr.To[int64](0) },
		"working dir":     func(c *corev1.Container, _ []corev1.Volume) { c.WorkingDir = "/tmp" },
		"stdin":           func(c *corev1.Container, _ []corev1.Volume) { c.Stdin, c.TTY = true, true },
		"restart policy":  func(c *corev1.Container, _ []corev1.Volume) { c.RestartPolicy = nil },
		"token audience": func(_ *corev1.Container, v []corev1.Volume) {
			v[1].Projected.Sources[0].ServiceAccountToken.Audience = "vault"
		},
		"staging source": func(_ *corev1.Container, v []corev1.Volume) {
			v[0].VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}
		},
		"a volume fewer": func(_ *corev1.Container, v []corev1.Volume) { v[1] = v[0] },
	} {
		t.Run(name, func(t *testing.T) {
			sc, vols := sidecar(), wardenVolumes()
			apiDefaults(sc, vols)
			change(sc, vols)
			assert.ErrorContains(t, verify(k, a, sc, vols), "does not match")
		})
	}
	t.Run("status field", func(t *testing.T) {
		forged := strings.Replace(a, `"owner":"apps/a"`, `"owner":"apps/b"`, 1)
		assert.ErrorContains(t, verify(k, forged, sidecar(), wardenVolumes()), "does not match")
	})
	t.Run("a later duplicate field", func(t *testing.T) {
		i := strings.LastIndex(a, `,"mac":`)
		forged := a[:i] + `,"owner":"apps/b"` + a[i:]
		assert.ErrorContains(t, verify(k, forged, sidecar(), wardenVolumes()), "does not match")
	})
}

func TestSealKeys(t *testing.T) {
	old := testKeyring(t, "k1")
	a := seal(t, old, sidecar(), wardenVolumes())

	rotated := testKeyring(t, "k1", "k2")
	assert.Equal(t, "k2", rotated.SigningKeyID(), "the greatest id signs")
	assert.NoError(t, verify(rotated, a, sidecar(), wardenVolumes()), "old seals verify while the old key is kept")
	assert.Contains(t, seal(t, rotated, sidecar(), wardenVolumes()), `"mac":"s1:k2:`)

	retired := testKeyring(t, "k2")
	assert.ErrorContains(t, verify(retired, a, sidecar(), wardenVolumes()), `key "k1"`)

	other := testKeyring(t, "k1")
	require.NoError(t, other.Set(map[string][]byte{"k1": []byte(strings.Repeat("z", MinKeyBytes))}))
	assert.ErrorContains(t, verify(other, a, sidecar(), wardenVolumes()), "does not match", "same id, other cluster's key")

	for name, bad := range map[string]string{
		"no seal":      strings.Split(a, `,"mac"`)[0] + "}",
		"not JSON":     "{",
		"other scheme": strings.Replace(a, `"mac":"s1:`, `"mac":"s9:`, 1),
		"bad base64":   a[:strings.LastIndex(a, ":")+1] + `!!!"}`,
		"mac not last": strings.Replace(a, `{"version"`, `{"x":1,"version"`, 1)[:len(a)-2] + `","y":1}`,
	} {
		assert.Error(t, verify(old, bad, sidecar(), wardenVolumes()), name)
	}
	_, err := NewKeyring(map[string][]byte{"short": []byte("0123")})
	assert.ErrorContains(t, err, "at least")
	_, err = NewKeyring(map[string][]byte{"a:b": []byte(strings.Repeat("z", MinKeyBytes))})
	assert.Error(t, err)
	_, err = NewKeyring(nil)
	assert.Error(t, err)
}

func TestDefaultPullPolicy(t *testing.T) {
	for image, want := range map[string]corev1.PullPolicy{
		"busybox":                      corev1.PullAlways,
		"busybox:latest":               corev1.PullAlways,
		"busybox:1.36":                 corev1.PullIfNotPresent,
		"localhost:5000/warden":        corev1.PullAlways,
		"localhost:5000/warden:v1":     corev1.PullIfNotPresent,
		"ghcr.io/w/s@sha256:abcd":      corev1.PullIfNotPresent,
		"ghcr.io/w/s:latest@sha256:ab": corev1.PullIfNotPresent,
	} {
		assert.Equal(t, want, defaultPullPolicy(image), image)
	}
}

// TestPartsDigestPinned: the digest of given parts never changes (seals made by every earlier
// version must keep verifying); a change of the normal form needs a new sealScheme.
func TestPartsDigestPinned(t *testing.T) {
	for _, tc := range []struct {
		name string
		vols []corev1.Volume
		want string
	}{
		{"sidecar and volumes", wardenVolumes(), "f0d641c43ff61084fc02406c333b7d8959c7e81e34f5c905b1a265b608cd25ba"},
		{"sidecar alone", nil, "1ce1ed0f28e909e0b880b7b3924c30cb74acb22ba2a754ad614c9666f6769db5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := PartsDigest(sidecar(), tc.vols)
			require.NoError(t, err)
			assert.Equal(t, tc.want, hex.EncodeToString(d[:]))
		})
	}
}

// TestParseStatus: a remembered status is what decoding gives, and each caller's copy is its own.
func TestParseStatus(t *testing.T) {
	for _, raw := range []string{
		`{"version":"v1","owner":"apps/a","volumes":["warden-x"],"containers":["app"],"mac":"s1:k:x"}`,
		`{"volumes":null,"containers":[]}`,
		`{"OWNER":"case-insensitive, as encoding/json reads it"}`,
	} {
		var want contract.Status
		require.NoError(t, json.Unmarshal([]byte(raw), &want))
		for range 2 {
			got, err := parseStatus(raw)
			require.NoError(t, err)
			require.Equal(t, want, got, raw)
			if len(got.Volumes) > 0 {
				got.Volumes[0] = "changed"
			}
		}
	}
	_, err := parseStatus(`{"owner":1}`)
	assert.Error(t, err)
	_, err = parseStatus(`{"owner":1}`)
	assert.Error(t, err, "an error is not remembered as a status")
}
