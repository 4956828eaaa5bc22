package mutate

import (
	"context"
	"encoding/json"
	"errors"
	"github.com/warden-dev/warden/internal/testing/admissiontest"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/pkg/admission/scope"
	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/guard"
)

func TestInjectAppPod(t *testing.T) {
	h := newTestHandler(t)
	raw := admissiontest.MustJSON(t, admissiontest.BasePod("svc-prod-app-1"))
	resp := admissiontest.Admit(t, h, admissiontest.Request("apps", raw))
	require.True(t, resp.Allowed, "%v", resp.Result)
	out := admissiontest.PodFrom(t, admissiontest.ApplyPatch(t, raw, resp))

	// The sidecar is the first init container and a native sidecar.
	require.Len(t, out.Spec.InitContainers, 1)
	sc := out.Spec.InitContainers[0]
	assert.Equal(t, contract.SidecarName, sc.Name)
	assert.Equal(t, "example.com/warden-sidecar:test", sc.Image)
	assert.Equal(t, corev1.ContainerRestartPolicyAlways, *sc.RestartPolicy)
	assert.Contains(t, sc.Args, "--owner=apps/svc-prod-app-1")
	assert.Contains(t, sc.Args, "--environment=prod")
	assert.Nil(t, sc.StartupProbe, "the postStart hook holds the app back, without a probe period")
	assert.Equal(t, []string{"/warden-sidecar", "probe", "--wait=1m0s", "http://127.0.0.1:8787/readyz"}, sc.Lifecycle.PostStart.Exec.Command)
	assert.Equal(t, []string{"/warden-sidecar", "probe", "http://127.0.0.1:8787/readyz"}, sc.LivenessProbe.Exec.Command)
	// Hardened.
	s := sc.SecurityContext
	assert.True(t, *s.RunAsNonRoot)
	assert.True(t, *s.ReadOnlyRootFilesystem)
	assert.False(t, *s.AllowPrivilegeEscalation)
	assert.Equal(t, []corev1.Capability{"ALL"}, s.Capabilities.Drop)
	assert.False(t, sc.Resources.Limits.Memory().IsZero())
	assert.False(t, sc.Resources.Requests.Cpu().IsZero())

	// Volumes: the user's first, then Warden's four.
	var names []string
	for _, v := range out.Spec.Volumes {
		names = append(names, v.Name)
	}
	assert.Equal(t, []string{"scratch", contract.VolumeStaging, contract.VolumeSnapshots, contract.VolumeState, contract.VolumeToken}, names)
	// The sidecar's identity: a pod certificate from Warden's signer, and no token without Vault.
	require.Len(t, out.Spec.Volumes[4].Projected.Sources, 1)
	cert := out.Spec.Volumes[4].Projected.Sources[0].PodCertificate
	require.NotNil(t, cert)
	assert.Equal(t, contract.SignerName, cert.SignerName)
	assert.Equal(t, "ECDSAP256", cert.KeyType)
	assert.EqualValues(t, 3600, *cert.MaxExpirationSeconds)
	assert.Contains(t, sc.Args, "--cert-file="+contract.SidecarCertFile)
	assert.NotContains(t, sc.Args, "--token-file="+contract.SidecarTokenFile)

	// The app gets a read-only mount of its owner's folder and the env, keeping its own.
	app := out.Spec.Containers[0]
	assert.Equal(t, []corev1.VolumeMount{
		{Name: "scratch", MountPath: "/scratch"},
		{Name: contract.VolumeStaging, MountPath: contract.DataDir, SubPath: "prod/apps.svc-prod-app-1", ReadOnly: true},
	}, app.VolumeMounts)
	assert.Equal(t, []corev1.EnvVar{{Name: "A", Value: "1"}, {Name: "WARDEN_PORT", Value: "8787"}, {Name: "WARDEN_DATA_DIR", Value: contract.DataDir}}, app.Env)

	// Only the sidecar sees the snapshot share, the state and the token.
	for _, m := range app.VolumeMounts {
		assert.NotContains(t, []string{contract.VolumeSnapshots, contract.VolumeState, contract.VolumeToken}, m.Name)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range sc.VolumeMounts {
		mounts[m.Name] = m
	}
	assert.True(t, mounts[contract.VolumeSnapshots].ReadOnly)
	assert.False(t, mounts[contract.VolumeStaging].ReadOnly)
	assert.True(t, mounts[contract.VolumeToken].ReadOnly)

	var st contract.Status
	require.NoError(t, json.Unmarshal([]byte(out.Annotations[contract.AnnotationStatus]), &st))
	assert.Equal(t, "apps/svc-prod-app-1", st.Owner)
	assert.Equal(t, "prod", st.Environment)
	assert.Equal(t, []string{"app"}, st.Containers)
	assert.True(t, st.Native)
}

func TestMountLayouts(t *testing.T) {
	for _, tc := range []struct {
		ns, sa, workload, want string
	}{
		{"apps", "svc-prod-app-1", "", "prod/apps.svc-prod-app-1"},
		{"apps", "svc-prod-app-1", "app", "prod/apps.svc-prod-app-1"},
		{"apps", "svc-prod-app-1", "job", "prod/apps.svc-prod-app-1"},
		{"ws", "user-ds-1", "workspace", "dev/ws.user-ds-1/ws.user-ds-1"},
		{"apps", "", "", "test/apps.default"}, // no serviceAccountName: the namespace's default
	} {
		t.Run(tc.ns+"/"+tc.sa+"/"+tc.workload, func(t *testing.T) {
			h := newTestHandler(t)
			p := admissiontest.BasePod(tc.sa)
			if tc.workload != "" {
				p.Labels[contract.LabelWorkload] = tc.workload
			}
			raw := admissiontest.MustJSON(t, p)
			resp := admissiontest.Admit(t, h, admissiontest.Request(tc.ns, raw))
			require.True(t, resp.Allowed, "%v", resp.Result)
			out := admissiontest.PodFrom(t, admissiontest.ApplyPatch(t, raw, resp))
			assert.Equal(t, tc.want, out.Spec.Containers[0].VolumeMounts[1].SubPath)
		})
	}
}

func TestDenials(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ns     string
		mutate func(*corev1.Pod)
		reason string
		msg    string
	}{
		{"unknown owner", "apps", func(p *corev1.Pod) { p.Spec.ServiceAccountName = "intruder" }, ReasonUnknownOwner, `"apps/intruder" is not a Warden owner`},
		{"owner of another namespace", "ws", func(p *corev1.Pod) { p.Spec.ServiceAccountName = "svc-prod-app-1" }, ReasonUnknownOwner, "ask a cluster admin"},
		{"bad workload label", "apps", func(p *corev1.Pod) { p.Labels[contract.LabelWorkload] = "notebook" }, ReasonInvalidLabel, "not one of app, workspace, job"},
		{"shareProcessNamespace", "apps", func(p *corev1.Pod) { p.Spec.ShareProcessNamespace = ptr.To(true) }, guard.ReasonShareProcess, "remove it"},
		{"hostPID", "apps", func(p *corev1.Pod) { p.Spec.HostPID = true }, guard.ReasonHostNamespace, "spec.hostPID"},
		{"hostNetwork", "apps", func(p *corev1.Pod) { p.Spec.HostNetwork = true }, guard.ReasonHostNamespace, "spec.hostNetwork"},
		{"hostIPC", "apps", func(p *corev1.Pod) { p.Spec.HostIPC = true }, guard.ReasonHostNamespace, "spec.hostIPC"},
		{"privileged", "apps", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		}, guard.ReasonPrivileged, "privileged"},
		{"privileged init container", "apps", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "init", Image: "x", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}
		}, guard.ReasonPrivileged, "spec.initContainers[0]"},
		{"SYS_PTRACE", "apps", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"SYS_PTRACE"}}}
		}, guard.ReasonCapability, "SYS_PTRACE"},
		{"CAP_SYS_ADMIN spelled with prefix", "apps", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"cap_sys_admin"}}}
		}, guard.ReasonCapability, "cap_sys_admin"},
		{"NET_ADMIN", "apps", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_ADMIN"}}}
		}, guard.ReasonCapability, "NET_ADMIN"},
		{"snapshot PVC", "apps", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "warden-snapshots"}}})
		}, guard.ReasonForbiddenVolume, "which is the dataset share"},
		{"sidecar name without status", "apps", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: contract.SidecarName, Image: "evil"})
		}, guard.ReasonForgedInjection, "is named like Warden's sidecar"},
		{"reserved container name", "apps", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "warden-helper" }, guard.ReasonReservedName, "reserved for Warden"},
		{"reserved volume name", "apps", func(p *corev1.Pod) { p.Spec.Volumes[0].Name = "warden-staging" }, guard.ReasonReservedName, "reserved for Warden"},
		{"mount at data dir", "apps", func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].MountPath = contract.DataDir }, ReasonMountConflict, contract.DataDir},
		{"mount above data dir", "apps", func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].MountPath = "/secure" }, ReasonMountConflict, "collides"},
		{"WARDEN_PORT set", "apps", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = append(p.Spec.Containers[0].Env, corev1.EnvVar{Name: "WARDEN_PORT", Value: "1"})
		}, ReasonEnvConflict, "WARDEN_PORT"},
		{"sidecar port taken", "apps", func(p *corev1.Pod) {
			p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 8787}}
		}, ReasonPortConflict, "8787"},
		{"forged status without sidecar", "apps", func(p *corev1.Pod) {
			p.Annotations = map[string]string{contract.AnnotationStatus: `{"version":"x"}`}
		}, guard.ReasonForgedInjection, "not sealed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, reg := admissiontest.Metrics()
			h := newMeasuredHandler(t, m)
			p := admissiontest.BasePod("svc-prod-app-1")
			tc.mutate(p)
			resp := admissiontest.Admit(t, h, admissiontest.Request(tc.ns, admissiontest.MustJSON(t, p)))
			require.False(t, resp.Allowed)
			require.EqualValues(t, 403, resp.Result.Code)
			assert.Contains(t, resp.Result.Message, tc.msg)
			assert.Empty(t, resp.Patch)
			assert.Equal(t, 1.0, admissiontest.Count(t, reg, "warden_admission_denials_total", tc.reason), "reason %s counted", tc.reason)
		})
	}
}

func TestGuardedShareKinds(t *testing.T) {
	hostPath := func(p string) corev1.VolumeSource {
		return corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: p}}
	}
	nfs := func(server, p string) corev1.VolumeSource {
		return corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: server, Path: p}}
	}
	share := hostPath("/mnt/datasets")
	for _, tc := range []struct {
		name    string
		guarded corev1.VolumeSource
		allow   func(*Config)
		user    corev1.VolumeSource
		denied  bool
	}{
		{"hostPath refused by default", share, nil, hostPath("/opt/tools"), true},
		{"hostPath allowed prefix", share, func(c *Config) { c.HostPathAllow = []string{"/opt"} }, hostPath("/opt/tools"), false},
		{"hostPath allowed prefix, sibling name", share, func(c *Config) { c.HostPathAllow = []string{"/opt"} }, hostPath("/optional"), true},
		{"hostPath allowed prefix, dotdot out", share, func(c *Config) { c.HostPathAllow = []string{"/opt"} }, hostPath("/opt/../var/lib/kubelet"), true},
		{"hostPath parent of the share, allowed", share, func(c *Config) { c.HostPathAllow = []string{"/mnt"} }, hostPath("/mnt"), true},
		{"hostPath child of the share", share, func(c *Config) { c.HostPathAllow = []string{"/mnt"} }, hostPath("/mnt/datasets/prod/"), true},
		{"hostPath root", share, func(c *Config) { c.HostPathAllow = []string{"/opt"} }, hostPath("/"), true},
		{"hostPath sibling of the share, allowed", share, func(c *Config) { c.HostPathAllow = []string{"/mnt"} }, hostPath("/mnt/datasets2"), false},
		{"nfs refused by default", nfs("nfs.local", "/exports/ds"), nil, nfs("other", "/exports/home"), true},
		{"nfs allowed, other export", nfs("nfs.local", "/exports/ds"), func(c *Config) { c.InlineVolumeAllow = []string{"nfs"} }, nfs("nfs.local", "/exports/home"), false},
		{"nfs allowed, share subdir", nfs("nfs.local", "/exports/ds"), func(c *Config) { c.InlineVolumeAllow = []string{"nfs"} }, nfs("NFS.local", "/exports/ds/prod"), true},
		{"nfs allowed, share by other server name", nfs("nfs.local", "/exports/ds"), func(c *Config) { c.InlineVolumeAllow = []string{"nfs"} }, nfs("nfs.local.", "/exports/ds"), true},
		{"nfs allowed, share by IP", nfs("nfs.local", "/exports/ds"), func(c *Config) { c.InlineVolumeAllow = []string{"nfs"} }, nfs("10.0.0.5", "/exports"), true},
		{"iscsi refused", share, nil, corev1.VolumeSource{ISCSI: &corev1.ISCSIVolumeSource{TargetPortal: "t", IQN: "i"}}, true},
		{"pvc other claim", corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "a"}}, nil, corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "b"}}, false},
		{"csi same driver", corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "ds.csi"}}, nil, corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "ds.csi", VolumeAttributes: map[string]string{"other": "x"}}}, true},
		{"csi other driver", corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "ds.csi"}}, nil, corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "secrets-store.csi"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newTestHandler(t, func(c *Config) {
				c.SnapshotVolume = tc.guarded
				if tc.allow != nil {
					tc.allow(c)
				}
			})
			p := admissiontest.BasePod("svc-prod-app-1")
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "data", VolumeSource: tc.user})
			resp := admissiontest.Admit(t, h, admissiontest.Request("apps", admissiontest.MustJSON(t, p)))
			assert.Equal(t, !tc.denied, resp.Allowed, "%v", resp.Result)
		})
	}
	t.Run("staging must be per pod", func(t *testing.T) {
		cfg := testConfig(func(c *Config) { c.StagingVolume = hostPath("/var/lib/warden/staging") })
		assert.ErrorContains(t, cfg.Validate(), "per pod")
		cfg = testConfig(func(c *Config) {
			c.StagingVolume = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "shared"}}
		})
		assert.ErrorContains(t, cfg.Validate(), "per pod")
		cfg = testConfig(func(c *Config) {
			c.StagingVolume = corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{}}
		})
		assert.NoError(t, cfg.Validate())
	})
}

func TestSkipped(t *testing.T) {
	h := newTestHandler(t)
	raw := admissiontest.MustJSON(t, admissiontest.BasePod("intruder")) // would be denied if in scope
	for _, ns := range []string{"plain", "kube-system", "warden-system"} {
		resp := admissiontest.Admit(t, h, admissiontest.Request(ns, raw))
		assert.True(t, resp.Allowed, ns)
		assert.Empty(t, resp.Patch, ns)
	}
	upd := admissiontest.Request("apps", raw)
	upd.Operation = admissionv1.Update
	resp := admissiontest.Admit(t, h, upd)
	assert.True(t, resp.Allowed)
	assert.Empty(t, resp.Patch)

	other := admissiontest.Request("apps", raw)
	other.Kind = metav1.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}
	assert.True(t, admissiontest.Admit(t, h, other).Allowed)
}

func TestIdempotentReinvocation(t *testing.T) {
	for _, native := range []bool{true, false} {
		h := newTestHandler(t, func(c *Config) { c.NativeSidecar = native })
		p := admissiontest.BasePod("svc-prod-app-1")
		p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox"}}
		raw := admissiontest.MustJSON(t, p)
		first := admissiontest.Admit(t, h, admissiontest.Request("apps", raw))
		require.True(t, first.Allowed)
		once := admissiontest.ApplyPatch(t, raw, first)

		second := admissiontest.Admit(t, h, admissiontest.Request("apps", once))
		require.True(t, second.Allowed, "%v", second.Result)
		assert.Empty(t, second.Patch, "second pass must not patch anything (native=%v)", native)

		out := admissiontest.PodFrom(t, once)
		count := 0
		for _, c := range append(out.Spec.InitContainers, out.Spec.Containers...) {
			if c.Name == contract.SidecarName {
				count++
			}
		}
		assert.Equal(t, 1, count)
		if native {
			assert.Equal(t, contract.SidecarName, out.Spec.InitContainers[0].Name, "sidecar runs before other init containers")
			assert.Equal(t, "setup", out.Spec.InitContainers[1].Name)
			assert.Equal(t, contract.DataDir, out.Spec.InitContainers[1].VolumeMounts[0].MountPath, "init containers after the sidecar may use it")
		} else {
			assert.Equal(t, contract.SidecarName, out.Spec.Containers[1].Name)
			assert.Nil(t, out.Spec.Containers[1].RestartPolicy)
			assert.Empty(t, out.Spec.InitContainers[0].VolumeMounts, "init containers run before a regular sidecar exists")
		}
	}
}

// The API server defaults fields after every patch; a re-invocation sees them and must still
// recognise Warden's own parts, and give containers added later the data mount. A later webhook
// that changes the sidecar itself breaks the seal.
func TestReinvocationAfterDefaulting(t *testing.T) {
	h := newTestHandler(t)
	raw := admissiontest.MustJSON(t, admissiontest.BasePod("svc-prod-app-1"))
	injected := admissiontest.PodFrom(t, admissiontest.ApplyPatch(t, raw, admissiontest.Admit(t, h, admissiontest.Request("apps", raw))))
	sc := &injected.Spec.InitContainers[0]
	sc.TerminationMessagePath = "/dev/termination-log"
	sc.LivenessProbe.SuccessThreshold = 1
	sc.Env[0].ValueFrom.FieldRef.APIVersion = "v1"
	injected.Spec.Volumes[4].Projected.DefaultMode = ptr.To[int32](0o644)
	injected.Spec.Containers = append(injected.Spec.Containers, corev1.Container{Name: "proxy", Image: "envoy"})

	raw2 := admissiontest.MustJSON(t, injected)
	resp := admissiontest.Admit(t, h, admissiontest.Request("apps", raw2))
	require.True(t, resp.Allowed, "%v", resp.Result)
	out := admissiontest.PodFrom(t, admissiontest.ApplyPatch(t, raw2, resp))
	assert.Equal(t, contract.DataDir, out.Spec.Containers[1].VolumeMounts[0].MountPath, "container added later gets the mount")
	resp = admissiontest.Admit(t, h, admissiontest.Request("apps", admissiontest.MustJSON(t, out)))
	assert.Empty(t, resp.Patch)

	out.Spec.InitContainers[0].VolumeMounts = append(out.Spec.InitContainers[0].VolumeMounts, corev1.VolumeMount{Name: "ca", MountPath: "/etc/ssl/extra"})
	resp = admissiontest.Admit(t, h, admissiontest.Request("apps", admissiontest.MustJSON(t, out)))
	require.False(t, resp.Allowed, "a webhook that edits the sidecar breaks the seal")
	assert.Contains(t, resp.Result.Message, "seal does not match")
}

func TestForgedInjection(t *testing.T) {
	h := newTestHandler(t)
	raw := admissiontest.MustJSON(t, admissiontest.BasePod("svc-prod-app-1"))
	good := admissiontest.PodFrom(t, admissiontest.ApplyPatch(t, raw, admissiontest.Admit(t, h, admissiontest.Request("apps", raw))))
	for name, forge := range map[string]func(p *corev1.Pod){
		"other image": func(p *corev1.Pod) { p.Spec.InitContainers[0].Image = "evil/sidecar" },
		"other args": func(p *corev1.Pod) {
			p.Spec.InitContainers[0].Args = append(p.Spec.InitContainers[0].Args, "--allow-non-loopback")
		},
		"other command": func(p *corev1.Pod) {
			p.Spec.InitContainers[0].Command = []string{"/bin/sh", "-c", "cat /warden/snapshots/*"}
		},
		"app mounts snapshots": func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: contract.VolumeSnapshots, MountPath: "/x"})
		},
		"app mounts staging writable": func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts[1].ReadOnly = false
		},
		"app mounts whole staging": func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts[1].SubPath = ""
		},
		"snapshot volume swapped": func(p *corev1.Pod) {
			p.Spec.Volumes[2].VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}
		},
		"certificate signer swapped": func(p *corev1.Pod) {
			p.Spec.Volumes[4].Projected.Sources[0].PodCertificate.SignerName = "example.com/other"
		},
		"certificate key type swapped": func(p *corev1.Pod) {
			p.Spec.Volumes[4].Projected.Sources[0].PodCertificate.KeyType = "RSA3072"
		},
		"sidecar env": func(p *corev1.Pod) {
			p.Spec.InitContainers[0].Env = append(p.Spec.InitContainers[0].Env, corev1.EnvVar{Name: "WARDEN_ALLOW_NON_LOOPBACK", Value: "true"})
		},
		"two sidecars":       func(p *corev1.Pod) { p.Spec.Containers = append(p.Spec.Containers, p.Spec.InitContainers[0]) },
		"privileged sidecar": func(p *corev1.Pod) { p.Spec.InitContainers[0].SecurityContext.Privileged = ptr.To(true) },
		"extra volume on the share": func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "x", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "warden-snapshots"}}})
		},
	} {
		t.Run(name, func(t *testing.T) {
			p := good.DeepCopy()
			forge(p)
			resp := admissiontest.Admit(t, h, admissiontest.Request("apps", admissiontest.MustJSON(t, p)))
			require.False(t, resp.Allowed, "forged pod admitted")
			assert.EqualValues(t, 403, resp.Result.Code)
		})
	}
}

// The azure-workload-identity #1312 trap: a webhook that re-serializes the typed Pod drops
// fields its vendored k8s.io/api does not know. Warden patches the raw object instead.
func TestUnknownFieldsSurvive(t *testing.T) {
	raw := []byte(`{
	  "apiVersion": "v1", "kind": "Pod",
	  "metadata": {"name": "future", "annotations": {"a": "b"}},
	  "spec": {
	    "serviceAccountName": "svc-prod-app-1",
	    "futurePodField": {"enabled": true, "list": [1, 2, 3]},
	    "containers": [{"name": "app", "image": "x", "futureContainerField": "keep-me",
	      "resources": {"futureResourceField": {"x": 1}}}],
	    "volumes": [{"name": "v", "futureVolumeSource": {"driver": "y"}}]
	  },
	  "futureTopLevel": 42
	}`)
	h := newTestHandler(t)
	resp := admissiontest.Admit(t, h, admissiontest.Request("apps", raw))
	require.True(t, resp.Allowed, "%v", resp.Result)
	for _, op := range admissiontest.PatchOps(t, resp) {
		assert.Equal(t, "add", op["op"], "only add operations: %s", op["path"])
	}
	var out map[string]any
	require.NoError(t, json.Unmarshal(admissiontest.ApplyPatch(t, raw, resp), &out))
	spec := out["spec"].(map[string]any)
	assert.Equal(t, map[string]any{"enabled": true, "list": []any{1.0, 2.0, 3.0}}, spec["futurePodField"])
	c := spec["containers"].([]any)[0].(map[string]any)
	assert.Equal(t, "keep-me", c["futureContainerField"])
	assert.Equal(t, map[string]any{"x": 1.0}, c["resources"].(map[string]any)["futureResourceField"])
	assert.Equal(t, map[string]any{"driver": "y"}, spec["volumes"].([]any)[0].(map[string]any)["futureVolumeSource"])
	assert.Equal(t, 42.0, out["futureTopLevel"])
	assert.Equal(t, "b", out["metadata"].(map[string]any)["annotations"].(map[string]any)["a"])
}

func TestFailClosed(t *testing.T) {
	raw := admissiontest.MustJSON(t, admissiontest.BasePod("svc-prod-app-1"))
	t.Run("no policy", func(t *testing.T) {
		h := newTestHandler(t)
		h.policy = admissiontest.StaticPolicy{}
		resp := admissiontest.Admit(t, h, admissiontest.Request("apps", raw))
		assert.False(t, resp.Allowed)
		assert.Contains(t, resp.Result.Message, "no Warden policy is in force")
	})
	t.Run("namespace lookup fails", func(t *testing.T) {
		h := newTestHandler(t)
		resp := admissiontest.Admit(t, h, admissiontest.Request("ghost", raw))
		assert.False(t, resp.Allowed)
		assert.EqualValues(t, 500, resp.Result.Code)
	})
	t.Run("panic", func(t *testing.T) {
		m, reg := admissiontest.Metrics()
		cfg := testConfig()
		h, err := NewHandler(cfg, admissiontest.OwnNamespace, admissiontest.Policy(t), panicking{}, cfg.Rules(admissiontest.Keys), nil, m)
		require.NoError(t, err)
		resp := admissiontest.Admit(t, h, admissiontest.Request("apps", raw))
		assert.False(t, resp.Allowed)
		assert.Contains(t, resp.Result.Message, "internal error")
		assert.Equal(t, 1.0, admissiontest.Count(t, reg, "warden_admission_requests_total", scope.OutcomeError))
	})
	t.Run("garbage object", func(t *testing.T) {
		h := newTestHandler(t)
		for _, bad := range []string{`{`, `[]`, `{"spec": {"containers": "nope"}}`, "\x00"} {
			resp := admissiontest.Admit(t, h, admissiontest.Request("apps", []byte(bad)))
			assert.False(t, resp.Allowed, bad)
		}
	})
}

type panicking struct{}

func (panicking) Labels(context.Context, string) (map[string]string, error) {
	panic(errors.New("boom"))
}

func TestMessagesSayHowToFix(t *testing.T) {
	h := newTestHandler(t)
	p := admissiontest.BasePod("intruder")
	resp := admissiontest.Admit(t, h, admissiontest.Request("apps", admissiontest.MustJSON(t, p)))
	msg := resp.Result.Message
	assert.True(t, strings.HasPrefix(msg, "warden: "))
	assert.Contains(t, msg, "spec.serviceAccountName")
	assert.Contains(t, msg, "add \"apps/intruder\" to the policy")
}

func TestVaultAddressReachesTheSidecar(t *testing.T) {
	h := newTestHandler(t, func(c *Config) { c.VaultAddr = "https://vault.example.com:8200" })
	raw := admissiontest.MustJSON(t, admissiontest.BasePod("svc-prod-app-1"))
	out := admissiontest.PodFrom(t, admissiontest.ApplyPatch(t, raw, admissiontest.Admit(t, h, admissiontest.Request("apps", raw))))
	assert.Contains(t, out.Spec.InitContainers[0].Args, "--vault-addr=https://vault.example.com:8200")
	bad := DefaultConfig()
	bad.SidecarImage = "x"
	bad.VaultAddr = "vault:8200"
	assert.Error(t, bad.Validate())
}

// With a metrics port, the sidecar serves /metrics on the pod IP there (through the environment,
// which an older sidecar image ignores), as a named container port whose number no app container
// may take.
// (An app port of the same name is harmless: the PodMonitor keeps the sidecar container's only.)
func TestSidecarMetricsPort(t *testing.T) {
	h := newTestHandler(t, func(c *Config) { c.SidecarMetricsPort = 9464 })
	raw := admissiontest.MustJSON(t, admissiontest.BasePod("svc-prod-app-1"))
	out := admissiontest.PodFrom(t, admissiontest.ApplyPatch(t, raw, admissiontest.Admit(t, h, admissiontest.Request("apps", raw))))
	sc := out.Spec.InitContainers[0]
	assert.Equal(t, []corev1.ContainerPort{{Name: contract.PortMetrics, ContainerPort: 9464, Protocol: corev1.ProtocolTCP}}, sc.Ports)
	assert.Contains(t, sc.Env, corev1.EnvVar{Name: contract.EnvMetricsListen, Value: ":9464"})

	off := admissiontest.PodFrom(t, admissiontest.ApplyPatch(t, raw, admissiontest.Admit(t, newTestHandler(t), admissiontest.Request("apps", raw))))
	assert.Empty(t, off.Spec.InitContainers[0].Ports, "off by default: nothing off loopback")

	p := admissiontest.BasePod("svc-prod-app-1")
	p.Spec.Containers[0].Ports = []corev1.ContainerPort{{ContainerPort: 9464}}
	resp := admissiontest.Admit(t, h, admissiontest.Request("apps", admissiontest.MustJSON(t, p)))
	assert.False(t, resp.Allowed, "an app container on the metrics port")
	assert.Contains(t, resp.Result.Message, "port 9464, which the Warden sidecar listens on")
	for _, bad := range []int32{-1, 65536, contract.DefaultSidecarPort} {
		c := DefaultConfig()
		c.SidecarMetricsPort = bad
		assert.Error(t, c.Validate(), bad)
	}
}

// Token identity (clusters without pod certificates), and Vault in certificate identity: the
// projected token is there exactly when something needs it.
func TestSidecarCredentials(t *testing.T) {
	for _, tc := range []struct {
		name        string
		mut         func(*Config)
		cert, token bool
	}{
		{"certificate", func(*Config) {}, true, false},
		{"certificate and Vault", func(c *Config) { c.VaultAddr = "https://vault.example.com" }, true, true},
		{"token", func(c *Config) { c.SidecarIdentity = IdentityToken }, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := admissiontest.MustJSON(t, admissiontest.BasePod("svc-prod-app-1"))
			resp := admissiontest.Admit(t, newTestHandler(t, tc.mut), admissiontest.Request("apps", raw))
			require.True(t, resp.Allowed, "%v", resp.Result)
			out := admissiontest.PodFrom(t, admissiontest.ApplyPatch(t, raw, resp))
			var cert, token bool
			for _, v := range out.Spec.Volumes {
				if v.Name != contract.VolumeToken {
					continue
				}
				for _, s := range v.Projected.Sources {
					cert = cert || s.PodCertificate != nil
					if s.ServiceAccountToken != nil {
						token = true
						assert.Equal(t, contract.TokenAudience, s.ServiceAccountToken.Audience)
						assert.EqualValues(t, 600, *s.ServiceAccountToken.ExpirationSeconds)
					}
				}
			}
			assert.Equal(t, tc.cert, cert, "pod certificate")
			assert.Equal(t, tc.token, token, "projected token")
			args := out.Spec.InitContainers[0].Args
			assert.Equal(t, tc.cert, slices.Contains(args, "--cert-file="+contract.SidecarCertFile))
			assert.Equal(t, tc.token, slices.Contains(args, "--token-file="+contract.SidecarTokenFile))
		})
	}
}
