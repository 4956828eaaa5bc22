package guard

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/pkg/contract"
)

const ownSubPath = "prod/apps.a"

func testRules(k *Keyring) *Rules {
	return &Rules{
		Snapshot:     corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "warden-snapshots", ReadOnly: true}},
		GuardedHosts: []string{"warden-webhook.warden-system.svc", "vault.example.com"},
		Audiences:    []string{contract.TokenAudience},
		Keys:         k,
	}
}

// injectedPod is a pod as Warden leaves it: sealed status, native sidecar, Warden's volumes,
// an app container with the read-only data mount.
func injectedPod(t testing.TB, k *Keyring) *corev1.Pod {
	sc, vols := sidecar(), wardenVolumes()
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "apps", Annotations: map[string]string{}},
		Spec: corev1.PodSpec{
			ServiceAccountName: "a",
			InitContainers:     []corev1.Container{*sc},
			Containers: []corev1.Container{{
				Name: "app", Image: "python",
				VolumeMounts: []corev1.VolumeMount{{Name: contract.VolumeStaging, MountPath: contract.DataDir, SubPath: ownSubPath, ReadOnly: true}},
			}},
			Volumes: append([]corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}, vols...),
		},
	}
	p.Annotations[contract.AnnotationStatus] = seal(t, k, sc, vols)
	return p
}

func vol(name string, src corev1.VolumeSource) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: src}
}

func mount(c *corev1.Container, m corev1.VolumeMount) { c.VolumeMounts = append(c.VolumeMounts, m) }

func TestCheck(t *testing.T) {
	k := testKeyring(t, "k1")
	r := testRules(k)
	for _, tc := range []struct {
		name   string
		change func(*corev1.Pod)
		reason string // "" = allowed
	}{
		{"as injected", func(*corev1.Pod) {}, ""},
		{"no status", func(p *corev1.Pod) { delete(p.Annotations, contract.AnnotationStatus) }, ReasonNotInjected},
		{"status of another owner", func(p *corev1.Pod) { p.Spec.ServiceAccountName = "b" }, ReasonForgedInjection},
		{"app mounts the share by name", func(p *corev1.Pod) {
			mount(&p.Spec.Containers[0], corev1.VolumeMount{Name: contract.VolumeSnapshots, MountPath: "/s"})
		}, ReasonForbiddenMount},
		{"app mounts the token by name", func(p *corev1.Pod) {
			mount(&p.Spec.Containers[0], corev1.VolumeMount{Name: contract.VolumeToken, MountPath: "/t", ReadOnly: true})
		}, ReasonForbiddenMount},
		{"app mounts the state by name", func(p *corev1.Pod) {
			mount(&p.Spec.Containers[0], corev1.VolumeMount{Name: contract.VolumeState, MountPath: "/s"})
		}, ReasonForbiddenMount},
		{"app mounts staging writable", func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].ReadOnly = false }, ReasonForbiddenMount},
		{"app mounts all of staging", func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].SubPath = "" }, ReasonForbiddenMount},
		{"app mounts another owner's staging", func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].SubPath = "prod/apps.b" }, ReasonForbiddenMount},
		{"app mounts staging by subPathExpr", func(p *corev1.Pod) {
			m := &p.Spec.Containers[0].VolumeMounts[0]
			m.SubPath, m.SubPathExpr = "", "$(X)"
		}, ReasonForbiddenMount},
		{"app mounts staging read-only elsewhere", func(p *corev1.Pod) {
			mount(&p.Spec.Containers[0], corev1.VolumeMount{Name: contract.VolumeStaging, MountPath: "/other", SubPath: ownSubPath, ReadOnly: true})
		}, ""},
		{"init container before the sidecar mounts the token", func(p *corev1.Pod) {
			p.Spec.InitContainers = append([]corev1.Container{{Name: "early", VolumeMounts: []corev1.VolumeMount{{Name: contract.VolumeToken, MountPath: "/t"}}}}, p.Spec.InitContainers...)
		}, ReasonForbiddenMount},
		{"block device on a Warden volume", func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeDevices = []corev1.VolumeDevice{{Name: contract.VolumeSnapshots, DevicePath: "/dev/x"}}
		}, ReasonForbiddenMount},
		{"ephemeral container mounts the token", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg",
				VolumeMounts: []corev1.VolumeMount{{Name: contract.VolumeToken, MountPath: "/t"}}}}}
		}, ReasonForbiddenMount},
		{"ephemeral container targets the sidecar", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg"}, TargetContainerName: contract.SidecarName}}
		}, ReasonEphemeral},
		{"ephemeral container targets the app", func(p *corev1.Pod) {
			p.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg"}, TargetContainerName: "app"}}
		}, ""},
		{"second sidecar", func(p *corev1.Pod) { p.Spec.Containers = append(p.Spec.Containers, p.Spec.InitContainers[0]) }, ReasonForgedInjection},
		{"sidecar moved to containers", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, p.Spec.InitContainers[0])
			p.Spec.InitContainers = nil
		}, ReasonForgedInjection},
		{"reserved container name", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "warden-helper" }, ReasonReservedName},
		{"reserved volume name", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, vol("warden-extra", corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}))
		}, ReasonReservedName},
		{"Warden volume repeated", func(p *corev1.Pod) { p.Spec.Volumes = append(p.Spec.Volumes, p.Spec.Volumes[1]) }, ReasonForgedInjection},
		{"sidecar image swapped", func(p *corev1.Pod) { p.Spec.InitContainers[0].Image = "evil" }, ReasonForgedInjection},
		{"sidecar extra env", func(p *corev1.Pod) {
			p.Spec.InitContainers[0].Env = append(p.Spec.InitContainers[0].Env, corev1.EnvVar{Name: "WARDEN_BROKER_CA", Value: "x"})
		}, ReasonForgedInjection},
		{"hostPath /", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, vol("h", corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}))
		}, ReasonForbiddenVolume},
		{"hostPath kubelet pods", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, vol("h", corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/kubelet/pods"}}))
		}, ReasonForbiddenVolume},
		{"share claim", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, vol("d", corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "warden-snapshots"}}))
		}, ReasonForbiddenVolume},
		{"other claim", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, vol("d", corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "home"}}))
		}, ""},
		{"ephemeral clone of the share", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, vol("d", corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{
				Spec: corev1.PersistentVolumeClaimSpec{DataSource: &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "warden-snapshots"}}}}}))
		}, ReasonForbiddenVolume},
		{"ephemeral clone of the share by dataSourceRef", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, vol("d", corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{
				Spec: corev1.PersistentVolumeClaimSpec{DataSourceRef: &corev1.TypedObjectReference{APIGroup: ptr.To(""), Kind: "PersistentVolumeClaim", Name: "warden-snapshots"}}}}}))
		}, ReasonForbiddenVolume},
		{"ephemeral scratch", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, vol("d", corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{}}}))
		}, ""},
		{"own token with Warden's audience", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, vol("tok", corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ConfigMap: &corev1.ConfigMapProjection{}}, {ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: contract.TokenAudience, Path: "t"}}}}}))
		}, ReasonTokenAudience},
		{"own token with another audience", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, vol("tok", corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: "sts.amazonaws.com", Path: "t"}}}}}))
		}, ""},
		{"inline nfs", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, vol("n", corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "10.0.0.5", Path: "/"}}))
		}, ReasonForbiddenVolume},
		{"gitRepo", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, vol("g", corev1.VolumeSource{GitRepo: &corev1.GitRepoVolumeSource{}}))
		}, ReasonForbiddenVolume},
		{"configMap, secret, downwardAPI", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, vol("c", corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}),
				vol("s", corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "x"}}), vol("d", corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{}}))
		}, ""},
		{"shareProcessNamespace", func(p *corev1.Pod) { p.Spec.ShareProcessNamespace = ptr.To(true) }, ReasonShareProcess},
		{"hostPID", func(p *corev1.Pod) { p.Spec.HostPID = true }, ReasonHostNamespace},
		{"hostNetwork", func(p *corev1.Pod) { p.Spec.HostNetwork = true }, ReasonHostNamespace},
		{"privileged app", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Privileged: ptr.To(true)}
		}, ReasonPrivileged},
		{"unmasked /proc", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{ProcMount: ptr.To(corev1.UnmaskedProcMount)}
		}, ReasonPrivileged},
		{"CAP_SYS_PTRACE", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"CAP_SYS_PTRACE"}}}
		}, ReasonCapability},
		{"NET_BIND_SERVICE", func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext = &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: []corev1.Capability{"NET_BIND_SERVICE"}}}
		}, ""},
		{"hostAliases for the broker", func(p *corev1.Pod) {
			p.Spec.HostAliases = []corev1.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"x", "Warden-Webhook.warden-system.svc."}}}
		}, ReasonRedirectedHost},
		{"hostAliases for Vault", func(p *corev1.Pod) {
			p.Spec.HostAliases = []corev1.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"vault.example.com"}}}
		}, ReasonRedirectedHost},
		{"hostAliases for others", func(p *corev1.Pod) {
			p.Spec.HostAliases = []corev1.HostAlias{{IP: "10.1.2.3", Hostnames: []string{"db.example.com"}}}
		}, ""},
		{"own nameserver", func(p *corev1.Pod) {
			p.Spec.DNSPolicy = corev1.DNSNone
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"10.9.9.9"}}
		}, ReasonRedirectedHost},
		{"dns search domain", func(p *corev1.Pod) { p.Spec.DNSConfig = &corev1.PodDNSConfig{Searches: []string{"evil.example"}} }, ReasonRedirectedHost},
		{"dns options", func(p *corev1.Pod) {
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}}}
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := injectedPod(t, k)
			tc.change(p)
			_, v := r.Check("apps", p)
			if tc.reason == "" {
				assert.Nil(t, v)
				return
			}
			require.NotNil(t, v, "admitted")
			assert.Equal(t, tc.reason, v.Reason, v.Message)
		})
	}
}

func TestAllowances(t *testing.T) {
	k := testKeyring(t, "k1")
	r := testRules(k)
	r.HostPathAllow = []string{"/opt/models"}
	r.InlineVolumeAllow = []string{"nfs"}
	r.Snapshot = corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs.local", Path: "/exports/datasets"}}
	for path, ok := range map[string]bool{"/opt/models": true, "/opt/models/x": true, "/opt/models/../../etc": false, "/opt/modelsx": false, "/opt": false} {
		v := r.Volume("apps", 0, &corev1.Volume{Name: "h", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path}}})
		assert.Equal(t, ok, v == nil, path)
	}
	for _, tc := range []struct {
		server, path string
		ok           bool
	}{{"nfs.local", "/exports/home", true}, {"nfs.local.", "/exports/datasets/prod", false}, {"10.0.0.5", "/exports", false}, {"other", "/", false}} {
		v := r.Volume("apps", 0, &corev1.Volume{Name: "n", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: tc.server, Path: tc.path}}})
		assert.Equal(t, tc.ok, v == nil, "%s:%s", tc.server, tc.path)
	}
}

// fakeShares is the storage behind each namespace's share claim.
type fakeShares map[string]Backing

func (f fakeShares) Backing(namespace, claim string) Backing {
	if b, ok := f[namespace+"/"+claim]; ok {
		return b
	}
	return Backing{Unknown: "claim " + claim + " not found"}
}

// An inline volume of the storage behind the share's claim is refused whatever the claim is
// called: the PersistentVolume's CSI driver or NFS export are the share.
func TestShareBacking(t *testing.T) {
	r := testRules(testKeyring(t, "k1"))
	r.InlineVolumeAllow = []string{"nfs"}
	r.Shares = fakeShares{
		"apps/warden-snapshots": {CSIDriver: "nfs.csi.k8s.io"},
		"ws/warden-snapshots":   {NFS: &corev1.NFSVolumeSource{Server: "filer", Path: "/exports/datasets"}},
	}
	csi := func(driver string) *corev1.Volume {
		return &corev1.Volume{Name: "c", VolumeSource: corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: driver}}}
	}
	nfs := func(path string) *corev1.Volume {
		return &corev1.Volume{Name: "n", VolumeSource: corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "10.1.1.1", Path: path}}}
	}
	for _, tc := range []struct {
		namespace string
		vol       *corev1.Volume
		ok        bool
	}{
		{"apps", csi("nfs.csi.k8s.io"), false},
		{"apps", csi("secrets-store.csi.k8s.io"), true},
		{"ws", csi("nfs.csi.k8s.io"), true},
		{"ws", nfs("/exports"), false},
		{"ws", nfs("/exports/datasets/prod"), false},
		{"ws", nfs("/exports/home"), true},
		{"unbound", csi("secrets-store.csi.k8s.io"), false}, // any driver might be the share's
		{"unbound", nfs("/x"), true},
	} {
		v := r.Volume(tc.namespace, 0, tc.vol)
		assert.Equal(t, tc.ok, v == nil, "%s %+v: %v", tc.namespace, tc.vol.VolumeSource, v)
		if v != nil {
			assert.Equal(t, ReasonForbiddenVolume, v.Reason)
		}
	}
	// The share as a CSI source: its own driver, no lookup.
	r.Shares = nil
	r.Snapshot = corev1.VolumeSource{CSI: &corev1.CSIVolumeSource{Driver: "share.example.com"}}
	assert.NotNil(t, r.Volume("apps", 0, csi("share.example.com")))
	assert.Nil(t, r.Volume("apps", 0, csi("other.example.com")))
}

func TestClaimsAndSnapshots(t *testing.T) {
	r := testRules(testKeyring(t, "k1"))
	assert.NotNil(t, r.Claim(&corev1.PersistentVolumeClaimSpec{DataSource: &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "warden-snapshots"}}))
	assert.Nil(t, r.Claim(&corev1.PersistentVolumeClaimSpec{DataSource: &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: "home"}}))
	assert.Nil(t, r.Claim(&corev1.PersistentVolumeClaimSpec{}))
	assert.NotNil(t, r.SnapshotOf("warden-snapshots"))
	assert.Nil(t, r.SnapshotOf("home"))
}

func TestFresh(t *testing.T) {
	r := testRules(testKeyring(t, "k1"))
	p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app",
		VolumeMounts: []corev1.VolumeMount{{Name: contract.VolumeToken, MountPath: "/t"}}}}}}
	v := r.Fresh("apps", p, ownSubPath)
	require.NotNil(t, v, "a mount by name of a volume Warden is about to add")
	assert.Equal(t, ReasonForbiddenMount, v.Reason)
	assert.Contains(t, v.Message, `spec.containers[0] ("app")`, "the author's own field path")
}
