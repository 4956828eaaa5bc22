package e2e

// The red team: a tenant who controls the app container and may create, update, exec into and
// forge pods in an opted-in namespace, against the real API server with Warden's own admission
// configurations (manifests/base). Every attack must be refused for the reason the invariant
// names (counted by warden_admission_denials_total, so a refusal for some other reason fails),
// and every harmless look-alike must still be admitted.

import (
	"bufio"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/guard"
)

// denials reads warden_admission_denials_total for one reason from the webhook's /metrics.
func denials(t testing.TB, reason string) float64 {
	t.Helper()
	resp, err := http.Get(healthURL + "/metrics")
	require.NoError(t, err)
	defer resp.Body.Close()
	prefix := `warden_admission_denials_total{reason="` + reason + `"} `
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err)
			return f
		}
	}
	return 0
}

// refused runs one attempt and checks it is refused by Warden for reason.
func refused(t *testing.T, reason string, attempt func() error) {
	t.Helper()
	before := denials(t, reason)
	err := attempt()
	require.Error(t, err, "attack admitted")
	assert.Contains(t, err.Error(), "warden: ", "refused by Warden, not by the API server")
	assert.Equal(t, before+1, denials(t, reason), "refused for reason %s: %v", reason, err)
}

// injected creates a real injected pod and returns it as stored.
func injected(t *testing.T, name string) *corev1.Pod {
	t.Helper()
	p, err := createPod(t, "apps", newPod(name, "svc-prod-app-1"), false)
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = kube.CoreV1().Pods("apps").Delete(context.Background(), p.Name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	})
	return p
}

// copyOf is a stored pod as a tenant would resubmit it (`kubectl get -o yaml`, edit, create):
// Warden's parts and the status annotation included, server-set metadata gone.
func copyOf(p *corev1.Pod, name string) *corev1.Pod {
	c := p.DeepCopy()
	c.ObjectMeta = metav1.ObjectMeta{Name: name, Labels: c.Labels, Annotations: c.Annotations}
	c.Status = corev1.PodStatus{}
	return c
}

func volume(name string, src corev1.VolumeSource) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: src}
}

func TestIsolationRedTeam(t *testing.T) {
	setup(t)
	real := injected(t, "redteam-model")
	other, err := createPod(t, "apps", newPod("redteam-other-owner", "svc-ephemeral"), false)
	require.NoError(t, err)
	defer kube.CoreV1().Pods("apps").Delete(context.Background(), other.Name, metav1.DeleteOptions{})
	ensureServiceAccount(t, "apps", "svc-ephemeral")
	own := contract.AppSubPath("prod", "apps/svc-prod-app-1", contract.WorkloadApp)

	appMount := func(m corev1.VolumeMount) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, m) }
	}
	addVolume := func(src corev1.VolumeSource) func(*corev1.Pod) {
		return func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, volume("extra", src))
			p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: "extra", MountPath: "/extra"})
		}
	}
	appSecurity := func(sc *corev1.SecurityContext) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext = sc }
	}
	caps := func(c ...corev1.Capability) *corev1.SecurityContext {
		return &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Add: c}}
	}
	token := func(aud string) corev1.VolumeSource {
		return corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "ns", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.namespace"}}}}},
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Audience: aud, ExpirationSeconds: ptr.To[int64](600), Path: "token"}},
		}}}
	}
	cloneOf := func(claim string, ref bool) corev1.VolumeSource {
		spec := corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}},
		}
		if ref {
			spec.DataSourceRef = &corev1.TypedObjectReference{Kind: "PersistentVolumeClaim", Name: claim}
		} else {
			spec.DataSource = &corev1.TypedLocalObjectReference{Kind: "PersistentVolumeClaim", Name: claim}
		}
		return corev1.VolumeSource{Ephemeral: &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{Spec: spec}}}
	}
	sidecarOf := func(p *corev1.Pod) *corev1.Container { return &p.Spec.InitContainers[0] }

	// Pods a tenant writes from scratch.
	fresh := []struct {
		name   string
		change func(*corev1.Pod)
		reason string
	}{
		{"mount the share by name", appMount(corev1.VolumeMount{Name: contract.VolumeSnapshots, MountPath: "/share"}), guard.ReasonForbiddenMount},
		{"mount the token by name", appMount(corev1.VolumeMount{Name: contract.VolumeToken, MountPath: "/tok", ReadOnly: true}), guard.ReasonForbiddenMount},
		{"mount the state by name", appMount(corev1.VolumeMount{Name: contract.VolumeState, MountPath: "/state"}), guard.ReasonForbiddenMount},
		{"mount staging writable", appMount(corev1.VolumeMount{Name: contract.VolumeStaging, MountPath: "/stage"}), guard.ReasonForbiddenMount},
		{"mount all of staging read-only", appMount(corev1.VolumeMount{Name: contract.VolumeStaging, MountPath: "/stage", ReadOnly: true}), guard.ReasonForbiddenMount},
		{"mount another owner's staging", appMount(corev1.VolumeMount{Name: contract.VolumeStaging, MountPath: "/stage", ReadOnly: true, SubPath: "prod/apps.svc-ephemeral"}), guard.ReasonForbiddenMount},
		{"mount staging through subPathExpr", func(p *corev1.Pod) {
			p.Spec.Containers[0].Env = []corev1.EnvVar{{Name: "D", Value: "prod"}}
			appMount(corev1.VolumeMount{Name: contract.VolumeStaging, MountPath: "/stage", ReadOnly: true, SubPathExpr: "$(D)"})(p)
		}, guard.ReasonForbiddenMount},
		{"init container mounts the token", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox", VolumeMounts: []corev1.VolumeMount{{Name: contract.VolumeToken, MountPath: "/tok"}}}}
		}, guard.ReasonForbiddenMount},
		{"hostPath /", addVolume(corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}), guard.ReasonForbiddenVolume},
		{"hostPath of every pod's tokens", addVolume(corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/var/lib/kubelet/pods"}}), guard.ReasonForbiddenVolume},
		{"hostPath through ..", addVolume(corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/tmp/../var/lib/kubelet"}}), guard.ReasonForbiddenVolume},
		{"the share's claim", addVolume(corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "warden-snapshots"}}), guard.ReasonForbiddenVolume},
		{"an ephemeral clone of the share", addVolume(cloneOf("warden-snapshots", false)), guard.ReasonForbiddenVolume},
		{"an ephemeral clone of the share by dataSourceRef", addVolume(cloneOf("warden-snapshots", true)), guard.ReasonForbiddenVolume},
		{"inline NFS", addVolume(corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs.example.com.", Path: "/"}}), guard.ReasonForbiddenVolume},
		{"inline iSCSI", addVolume(corev1.VolumeSource{ISCSI: &corev1.ISCSIVolumeSource{TargetPortal: "10.0.0.1:3260", IQN: "iqn.2001-04.com.example:storage", Lun: 0}}), guard.ReasonForbiddenVolume},
		{"own token for the broker's audience", addVolume(token(contract.TokenAudience)), guard.ReasonTokenAudience},
		{"shareProcessNamespace", func(p *corev1.Pod) { p.Spec.ShareProcessNamespace = ptr.To(true) }, guard.ReasonShareProcess},
		{"hostPID", func(p *corev1.Pod) { p.Spec.HostPID = true }, guard.ReasonHostNamespace},
		{"hostIPC", func(p *corev1.Pod) { p.Spec.HostIPC = true }, guard.ReasonHostNamespace},
		{"hostNetwork", func(p *corev1.Pod) { p.Spec.HostNetwork = true }, guard.ReasonHostNamespace},
		{"privileged app", appSecurity(&corev1.SecurityContext{Privileged: ptr.To(true)}), guard.ReasonPrivileged},
		{"privileged init container", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox", SecurityContext: &corev1.SecurityContext{Privileged: ptr.To(true)}}}
		}, guard.ReasonPrivileged},
		{"SYS_PTRACE", appSecurity(caps("SYS_PTRACE")), guard.ReasonCapability},
		{"cap_sys_admin in lower case", appSecurity(caps("cap_sys_admin")), guard.ReasonCapability},
		{"NET_ADMIN", appSecurity(caps("NET_ADMIN")), guard.ReasonCapability},
		{"hostAliases for the broker", func(p *corev1.Pod) {
			p.Spec.HostAliases = []corev1.HostAlias{{IP: "10.0.0.66", Hostnames: []string{"WARDEN-WEBHOOK.warden-system.svc."}}}
		}, guard.ReasonRedirectedHost},
		{"hostAliases for Vault", func(p *corev1.Pod) {
			p.Spec.HostAliases = []corev1.HostAlias{{IP: "10.0.0.66", Hostnames: []string{"vault.vault.svc"}}}
		}, guard.ReasonRedirectedHost},
		{"own DNS server", func(p *corev1.Pod) {
			p.Spec.DNSPolicy = corev1.DNSNone
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Nameservers: []string{"10.0.0.66"}}
		}, guard.ReasonRedirectedHost},
		{"own DNS search domain", func(p *corev1.Pod) { p.Spec.DNSConfig = &corev1.PodDNSConfig{Searches: []string{"evil.example.com"}} }, guard.ReasonRedirectedHost},
		{"a container named like the sidecar", func(p *corev1.Pod) {
			p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: contract.SidecarName, Image: "evil"})
		}, guard.ReasonForgedInjection},
		{"a reserved container name", func(p *corev1.Pod) { p.Spec.Containers[0].Name = "warden-helper" }, guard.ReasonReservedName},
		{"a reserved volume name", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, volume("warden-cache", corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}))
		}, guard.ReasonReservedName},
		{"a hand-written status annotation", func(p *corev1.Pod) {
			p.Annotations = map[string]string{contract.AnnotationStatus: `{"version":"v9","owner":"apps/svc-prod-app-1"}`}
		}, guard.ReasonForgedInjection},
	}
	for _, a := range fresh {
		t.Run("create/"+a.name, func(t *testing.T) {
			p := newPod("attack", "svc-prod-app-1")
			a.change(p)
			refused(t, a.reason, func() error { _, err := createPod(t, "apps", p, true); return err })
		})
	}

	// Copies of a real injected pod, edited: forged injections.
	forged := []struct {
		name   string
		change func(*corev1.Pod)
		reason string
	}{
		{"sidecar image swapped", func(p *corev1.Pod) { sidecarOf(p).Image = "evil.example.com/sidecar:v1" }, guard.ReasonForgedInjection},
		{"a second WARDEN_BROKER_CA", func(p *corev1.Pod) {
			sidecarOf(p).Env = append(sidecarOf(p).Env, corev1.EnvVar{Name: "WARDEN_BROKER_CA", Value: "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"})
		}, guard.ReasonForgedInjection},
		{"another sidecar environment variable", func(p *corev1.Pod) {
			sidecarOf(p).Env = append(sidecarOf(p).Env, corev1.EnvVar{Name: "HTTPS_PROXY", Value: "http://10.0.0.66:3128"})
		}, guard.ReasonForgedInjection},
		{"sidecar envFrom", func(p *corev1.Pod) {
			sidecarOf(p).EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "evil"}}}}
		}, guard.ReasonForgedInjection},
		{"sidecar args", func(p *corev1.Pod) { sidecarOf(p).Args = append(sidecarOf(p).Args, "--broker-url=https://10.0.0.66") }, guard.ReasonForgedInjection},
		{"sidecar preStop hook", func(p *corev1.Pod) {
			sidecarOf(p).Lifecycle.PreStop = &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"/warden-sidecar", "probe", "http://10.0.0.66/"}}}
		}, guard.ReasonForgedInjection},
		{"sidecar mounts an extra volume", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, volume("evil", corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}))
			sidecarOf(p).VolumeMounts = append(sidecarOf(p).VolumeMounts, corev1.VolumeMount{Name: "evil", MountPath: "/evil"})
		}, guard.ReasonForgedInjection},
		{"sidecar runs as root", func(p *corev1.Pod) { sidecarOf(p).SecurityContext.RunAsUser = ptr.To[int64](0) }, guard.ReasonForgedInjection},
		{"snapshot volume swapped for the node's root", func(p *corev1.Pod) {
			for i := range p.Spec.Volumes {
				if p.Spec.Volumes[i].Name == contract.VolumeSnapshots {
					p.Spec.Volumes[i].VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/"}}
				}
			}
		}, guard.ReasonForgedInjection},
		{"status names another workload", func(p *corev1.Pod) {
			p.Annotations[contract.AnnotationStatus] = strings.Replace(p.Annotations[contract.AnnotationStatus], `"workload":"app"`, `"workload":"job"`, 1)
		}, guard.ReasonForgedInjection},
		{"status without its seal", func(p *corev1.Pod) {
			s := p.Annotations[contract.AnnotationStatus]
			p.Annotations[contract.AnnotationStatus] = s[:strings.LastIndex(s, `,"mac":`)] + "}"
		}, guard.ReasonForgedInjection},
		{"app mounts the share next to its data mount", func(p *corev1.Pod) {
			p.Spec.Containers[0].VolumeMounts = append(p.Spec.Containers[0].VolumeMounts, corev1.VolumeMount{Name: contract.VolumeSnapshots, MountPath: "/share"})
		}, guard.ReasonForbiddenMount},
		{"app's data mount made writable", func(p *corev1.Pod) {
			for i, m := range p.Spec.Containers[0].VolumeMounts {
				if m.Name == contract.VolumeStaging {
					p.Spec.Containers[0].VolumeMounts[i].ReadOnly = false
				}
			}
		}, guard.ReasonForbiddenMount},
		{"another owner's injection under this owner", func(p *corev1.Pod) {
			o := other.DeepCopy()
			p.Annotations[contract.AnnotationStatus] = o.Annotations[contract.AnnotationStatus]
			p.Spec.InitContainers = o.Spec.InitContainers
		}, guard.ReasonForgedInjection},
		{"this owner's injection on another owner's pod", func(p *corev1.Pod) { p.Spec.ServiceAccountName = "svc-ephemeral" }, guard.ReasonForgedInjection},
	}
	for _, a := range forged {
		t.Run("forge/"+a.name, func(t *testing.T) {
			p := copyOf(real, "forged")
			a.change(p)
			refused(t, a.reason, func() error { _, err := createPod(t, "apps", p, true); return err })
		})
	}

	// Changes to a running injected pod.
	update := func(change func(*corev1.Pod)) func() error {
		return func() error {
			p, err := kube.CoreV1().Pods("apps").Get(ctx(t), real.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			change(p)
			_, err = kube.CoreV1().Pods("apps").Update(ctx(t), p, metav1.UpdateOptions{})
			return err
		}
	}
	debug := func(ec corev1.EphemeralContainer) func() error {
		return func() error {
			p, err := kube.CoreV1().Pods("apps").Get(ctx(t), real.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, ec)
			_, err = kube.CoreV1().Pods("apps").UpdateEphemeralContainers(ctx(t), real.Name, p, metav1.UpdateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}
	}
	connect := func(sub, container string) func() error {
		return func() error {
			return kube.CoreV1().RESTClient().Post().Namespace("apps").Resource("pods").Name(real.Name).SubResource(sub).
				Param("container", container).Param("command", "sh").Param("stdout", "true").Do(ctx(t)).Error()
		}
	}
	for _, a := range []struct {
		name    string
		attempt func() error
		reason  string
	}{
		{"replace the sidecar's image", update(func(p *corev1.Pod) { p.Spec.InitContainers[0].Image = "evil.example.com/sidecar:v1" }), guard.ReasonImmutable},
		{"rewrite the status", update(func(p *corev1.Pod) {
			p.Annotations[contract.AnnotationStatus] = strings.Replace(p.Annotations[contract.AnnotationStatus], `"nativeSidecar":true`, `"nativeSidecar":false`, 1)
		}), guard.ReasonImmutable},
		{"remove the status", update(func(p *corev1.Pod) { delete(p.Annotations, contract.AnnotationStatus) }), guard.ReasonImmutable},
		{"debug container targeting the sidecar", debug(corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg1", Image: "busybox"}, TargetContainerName: contract.SidecarName}), guard.ReasonEphemeral},
		{"debug container with the token", debug(corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg2", Image: "busybox",
			VolumeMounts: []corev1.VolumeMount{{Name: contract.VolumeToken, MountPath: "/tok"}}}}), guard.ReasonForbiddenMount},
		{"debug container with the share", debug(corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg3", Image: "busybox",
			VolumeMounts: []corev1.VolumeMount{{Name: contract.VolumeSnapshots, MountPath: "/share"}}}}), guard.ReasonForbiddenMount},
		{"debug container with SYS_PTRACE", debug(corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg4", Image: "busybox",
			SecurityContext: caps("SYS_PTRACE")}}), guard.ReasonCapability},
		{"exec into the sidecar", connect("exec", contract.SidecarName), guard.ReasonSidecarAccess},
		{"attach to the sidecar", connect("attach", contract.SidecarName), guard.ReasonSidecarAccess},
		{"a claim that clones the share", func() error {
			_, err := kube.CoreV1().PersistentVolumeClaims("apps").Create(ctx(t), &corev1.PersistentVolumeClaim{
				ObjectMeta: metav1.ObjectMeta{Name: "stolen"},
				Spec:       *cloneOf("warden-snapshots", false).Ephemeral.VolumeClaimTemplate.Spec.DeepCopy(),
			}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}, guard.ReasonForbiddenVolume},
	} {
		t.Run("running/"+a.name, func(t *testing.T) { refused(t, a.reason, a.attempt) })
	}

	// Harmless look-alikes: refusing these would make Warden unusable.
	for _, ok := range []struct {
		name   string
		change func(*corev1.Pod)
	}{
		{"hostAliases for another host", func(p *corev1.Pod) {
			p.Spec.HostAliases = []corev1.HostAlias{{IP: "10.0.0.7", Hostnames: []string{"db.example.com"}}}
		}},
		{"own token for another audience", addVolume(token("sts.amazonaws.com"))},
		{"configMap, secret, downwardAPI and emptyDir volumes", func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, volume("c", corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "c"}}}),
				volume("s", corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s"}}),
				volume("d", corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{Items: []corev1.DownwardAPIVolumeFile{{Path: "l", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}}),
				volume("e", corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}))
		}},
		{"another claim", addVolume(corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "home"}})},
		{"an ephemeral scratch volume", addVolume(cloneOf("home", false))},
		{"NET_BIND_SERVICE", appSecurity(caps("NET_BIND_SERVICE"))},
		{"dns options", func(p *corev1.Pod) {
			p.Spec.DNSConfig = &corev1.PodDNSConfig{Options: []corev1.PodDNSConfigOption{{Name: "ndots", Value: ptr.To("2")}}}
		}},
		{"the data mount written out by hand", appMount(corev1.VolumeMount{Name: contract.VolumeStaging, MountPath: contract.DataDir, SubPath: own, ReadOnly: true})},
		{"an init container before the app", func(p *corev1.Pod) { p.Spec.InitContainers = []corev1.Container{{Name: "setup", Image: "busybox"}} }},
	} {
		t.Run("harmless/"+ok.name, func(t *testing.T) {
			p := newPod("harmless", "svc-prod-app-1")
			ok.change(p)
			_, err := createPod(t, "apps", p, true)
			assert.NoError(t, err)
		})
	}
	t.Run("harmless/a copy of an injected pod, resubmitted as is", func(t *testing.T) {
		_, err := createPod(t, "apps", copyOf(real, "resubmitted"), true)
		assert.NoError(t, err)
	})
	t.Run("harmless/running pod relabelled and annotated", func(t *testing.T) {
		assert.NoError(t, update(func(p *corev1.Pod) {
			p.Labels = map[string]string{"team": "ds"}
			p.Annotations["note"] = "checked"
			p.Finalizers = append(p.Finalizers, "example.com/hold")
		})())
		assert.NoError(t, update(func(p *corev1.Pod) { p.Finalizers = nil })())
	})
	t.Run("harmless/debug container on the app", func(t *testing.T) {
		assert.NoError(t, debug(corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "dbg-ok", Image: "busybox"}, TargetContainerName: "app"})())
	})
	t.Run("harmless/exec into the app reaches the node", func(t *testing.T) {
		err := connect("exec", "app")()
		require.Error(t, err, "there is no kubelet in this suite")
		assert.False(t, apierrors.IsForbidden(err), "admission let it through: %v", err)
	})
}

// A webhook that runs after Warden and mounts the token into its own container on its second
// pass, after Warden's last one: only the validating webhook, which sees the final pod, can
// catch it.
func TestLaterWebhookCannotOpenAHole(t *testing.T) {
	setup(t)
	late := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		var pod corev1.Pod
		_ = json.Unmarshal(review.Request.Object.Raw, &pod)
		op := map[string]any{"op": "add", "path": "/spec/containers/-", "value": map[string]any{"name": "helper", "image": "busybox"}}
		for i, c := range pod.Spec.Containers {
			if c.Name == "helper" { // second pass: Warden has given it the data mount already
				op = map[string]any{"op": "add", "path": fmt.Sprintf("/spec/containers/%d/volumeMounts/-", i),
					"value": map[string]any{"name": contract.VolumeToken, "mountPath": "/tok"}}
			}
		}
		patch, _ := json.Marshal([]any{op})
		pt := admissionv1.PatchTypeJSONPatch
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true, Patch: patch, PatchType: &pt}
		review.Request = nil
		_ = json.NewEncoder(w).Encode(review)
	}))
	late.StartTLS()
	defer late.Close()
	mwc := lateWebhook("zz-e2e-token-mounter", late, "e2e-mounter")
	mwc.Webhooks[0].ReinvocationPolicy = ptr.To(admissionregv1.IfNeededReinvocationPolicy)
	_, err := kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx(t), mwc, metav1.CreateOptions{})
	require.NoError(t, err)
	defer kube.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), mwc.Name, metav1.DeleteOptions{})

	p := newPod("mounted-later", "svc-prod-app-1")
	p.Labels = map[string]string{"e2e-mounter": "yes"}
	require.Eventually(t, func() bool {
		_, err = createPod(t, "apps", p, true)
		return err != nil
	}, time.Minute, 200*time.Millisecond, "the mounting webhook never ran")
	assert.Contains(t, err.Error(), `admission webhook "pods.validate.warden.dev" denied the request`)
	assert.Contains(t, err.Error(), `mounts volume "warden-token"`)
}

// lateWebhook is a mutating webhook configuration for pods labelled label=yes.
func lateWebhook(name string, srv *httptest.Server, label string) *admissionregv1.MutatingWebhookConfiguration {
	return &admissionregv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregv1.MutatingWebhook{{
			Name:                    name + ".e2e.warden.dev",
			AdmissionReviewVersions: []string{"v1"},
			ClientConfig:            admissionregv1.WebhookClientConfig{URL: ptr.To(srv.URL + "/"), CABundle: certPEM(srv)},
			SideEffects:             ptr.To(admissionregv1.SideEffectClassNone),
			FailurePolicy:           ptr.To(admissionregv1.Fail),
			ObjectSelector:          &metav1.LabelSelector{MatchLabels: map[string]string{label: "yes"}},
			Rules: []admissionregv1.RuleWithOperations{{
				Operations: []admissionregv1.OperationType{admissionregv1.Create},
				Rule:       admissionregv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
			}},
		}},
	}
}

// A namespace that was opted in after its pods started: a pod there cannot be made to look
// injected by an update, and the broker refuses pods Warden never admitted.
func TestOptInLaterAndBrokerTrust(t *testing.T) {
	ensureNamespace(t, "late-optin", false)
	ensureServiceAccount(t, "late-optin", "svc")
	plain, err := createPod(t, "late-optin", newPod("before", "svc"), false)
	require.NoError(t, err)
	ns, err := kube.CoreV1().Namespaces().Get(ctx(t), "late-optin", metav1.GetOptions{})
	require.NoError(t, err)
	ns.Labels[contract.LabelInject] = contract.LabelInjectEnabled
	_, err = kube.CoreV1().Namespaces().Update(ctx(t), ns, metav1.UpdateOptions{})
	require.NoError(t, err)
	real := injected(t, "trust-model")
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, contract.AnnotationStatus, real.Annotations[contract.AnnotationStatus])
	require.Eventually(t, func() bool {
		_, err = kube.CoreV1().Pods("late-optin").Patch(ctx(t), plain.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		return err != nil
	}, time.Minute, 200*time.Millisecond, "the namespace's new label never reached the validating webhook")
	assert.Contains(t, err.Error(), "warden: ")

	// A forged injection in a namespace Warden does not govern passes admission (no webhook
	// runs there) but never the broker.
	forged := copyOf(real, "forged-elsewhere")
	forged.Spec.ServiceAccountName = "whoever"
	forged.Annotations[contract.AnnotationStatus] = strings.Replace(forged.Annotations[contract.AnnotationStatus], "apps/svc-prod-app-1", "plain/whoever", 1)
	setup(t)
	p, err := createPod(t, "plain", forged, false)
	require.NoError(t, err)
	code, msg := rawBroker(t, token(t, p, contract.TokenAudience), `{"dataset":"prod-dataset-1","caller":{"user":"user-ds-1"}}`)
	assert.Equal(t, 403, code)
	assert.Contains(t, msg, "not opted in")

	// Opting that namespace in does not make the forgery pass: its seal is wrong.
	ns, err = kube.CoreV1().Namespaces().Get(ctx(t), "plain", metav1.GetOptions{})
	require.NoError(t, err)
	ns.Labels[contract.LabelInject] = contract.LabelInjectEnabled
	_, err = kube.CoreV1().Namespaces().Update(ctx(t), ns, metav1.UpdateOptions{})
	require.NoError(t, err)
	defer func() {
		ns, _ := kube.CoreV1().Namespaces().Get(context.Background(), "plain", metav1.GetOptions{})
		delete(ns.Labels, contract.LabelInject)
		_, _ = kube.CoreV1().Namespaces().Update(context.Background(), ns, metav1.UpdateOptions{})
	}()
	require.Eventually(t, func() bool {
		code, msg = rawBroker(t, token(t, p, contract.TokenAudience), `{"dataset":"prod-dataset-1","caller":{"user":"user-ds-1"}}`)
		return strings.Contains(msg, "seal")
	}, time.Minute, 200*time.Millisecond, "broker answered %d %s", code, msg)
	assert.Equal(t, 403, code)
}

func certPEM(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}
