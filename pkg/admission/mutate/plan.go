package mutate

import (
	"path"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/pkg/api"
	"github.com/warden-dev/warden/pkg/version"
)

// plan is everything the webhook adds to one pod, as typed values. The patch and the
// already-injected check are both derived from it, so they can never disagree.
type plan struct {
	volumes  []corev1.Volume
	sidecar  corev1.Container
	appMount corev1.VolumeMount
	appEnv   []corev1.EnvVar
	status   api.Status
}

// sidecarStartTimeout bounds how long the postStart hook waits for the sidecar to answer.
const sidecarStartTimeout = 60 * time.Second

func (c *Config) plan(owner, env string, w api.Workload) *plan {
	port := strconv.Itoa(int(c.SidecarPort))
	args, creds := c.sidecarArgs(port, owner, env, w)
	volumes := []corev1.Volume{
		{Name: api.VolumeStaging, VolumeSource: c.StagingVolume},
		{Name: api.VolumeSnapshots, VolumeSource: c.SnapshotVolume},
		{Name: api.VolumeState, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: api.VolumeToken, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: creds}}},
	}
	names := make([]string, len(volumes))
	for i, v := range volumes {
		names[i] = v.Name
	}
	return &plan{
		volumes: volumes,
		sidecar: c.sidecar(port, args),
		appMount: corev1.VolumeMount{
			Name:      api.VolumeStaging,
			MountPath: api.DataDir,
			SubPath:   api.AppSubPath(env, owner, w),
			ReadOnly:  true,
		},
		appEnv: []corev1.EnvVar{
			{Name: api.EnvPort, Value: port},
			{Name: api.EnvDataDir, Value: api.DataDir},
		},
		status: api.Status{
			Version:     version.Version,
			Owner:       owner,
			Environment: env,
			Workload:    w,
			Sidecar:     api.SidecarName,
			Image:       c.SidecarImage,
			Native:      c.NativeSidecar,
			Volumes:     names,
		},
	}
}

// sidecarArgs are the sidecar's flags and the credentials its token volume projects.
func (c *Config) sidecarArgs(port, owner, env string, w api.Workload) ([]string, []corev1.VolumeProjection) {
	args := []string{
		"--listen=127.0.0.1:" + port,
		"--owner=" + owner,
		"--environment=" + env,
		"--snapshot-root=" + api.SidecarSnapshotRoot,
		"--staging-root=" + api.SidecarStagingRoot,
		"--state-dir=" + api.SidecarStateDir,
		"--workload=" + string(w),
	}
	// The sidecar's credentials, in Warden's token volume: its pod certificate for the broker
	// (or, in token identity, the projected token), and the token for Vault's Kubernetes auth.
	withCert := c.SidecarIdentity == IdentityPodCertificate
	withToken := !withCert || c.VaultAddr != ""
	var creds []corev1.VolumeProjection
	if withCert {
		args = append(args, "--cert-file="+api.SidecarCertFile)
		creds = append(creds, corev1.VolumeProjection{PodCertificate: &corev1.PodCertificateProjection{
			SignerName:           api.SignerName,
			KeyType:              "ECDSAP256",
			MaxExpirationSeconds: ptr.To(c.CertificateSeconds),
			CredentialBundlePath: path.Base(api.SidecarCertFile),
		}})
	}
	if withToken {
		args = append(args, "--token-file="+api.SidecarTokenFile)
		creds = append(creds, corev1.VolumeProjection{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
			Audience:          api.TokenAudience,
			ExpirationSeconds: ptr.To(c.TokenExpirationSeconds),
			Path:              path.Base(api.SidecarTokenFile),
		}})
	}
	if c.BrokerURL != "" {
		args = append(args, "--broker-url="+c.BrokerURL)
	}
	if c.VaultAddr != "" {
		args = append(args, "--vault-addr="+c.VaultAddr)
	}
	return args, creds
}

// sidecar is the sidecar container: loopback-only, unprivileged, read-only root, held ready
// before the app containers start.
func (c *Config) sidecar(port string, args []string) corev1.Container {
	// The sidecar listens on loopback only, which kubelet's HTTP probes cannot reach (they dial
	// the pod IP), so the liveness probe runs the binary's own probe command in the container.
	readyz := "http://127.0.0.1:" + port + "/readyz"
	liveness := &corev1.Probe{
		ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
			Command: []string{"/warden-sidecar", "probe", readyz},
		}},
		PeriodSeconds:    20,
		TimeoutSeconds:   2,
		FailureThreshold: 3,
	}
	// No startup probe: a native sidecar counts as started when its postStart hook returns, and
	// the hook returns as soon as the sidecar answers (polling every 10 ms). The app containers
	// start right after, instead of waiting for a probe period (the kubelet's probes tick once a
	// second at best). If the sidecar never gets ready, the hook fails and the kubelet restarts it.
	postStart := &corev1.LifecycleHandler{Exec: &corev1.ExecAction{
		Command: []string{"/warden-sidecar", "probe", "--wait=" + sidecarStartTimeout.String(), readyz},
	}}
	sidecar := corev1.Container{
		Name:            api.SidecarName,
		Image:           c.SidecarImage,
		ImagePullPolicy: c.SidecarImagePullPolicy,
		Command:         []string{"/warden-sidecar"},
		Args:            args,
		Env: []corev1.EnvVar{
			{Name: "WARDEN_POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "WARDEN_POD_UID", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}}},
		},
		Resources: c.SidecarResources,
		VolumeMounts: []corev1.VolumeMount{
			{Name: api.VolumeStaging, MountPath: api.SidecarStagingRoot},
			{Name: api.VolumeSnapshots, MountPath: api.SidecarSnapshotRoot, ReadOnly: true},
			{Name: api.VolumeState, MountPath: api.SidecarStateDir},
			{Name: api.VolumeToken, MountPath: api.SidecarTokenDir, ReadOnly: true},
		},
		Lifecycle:                &corev1.Lifecycle{PostStart: postStart},
		LivenessProbe:            liveness,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
		SecurityContext: &corev1.SecurityContext{
			RunAsUser:                ptr.To(c.SidecarUID),
			RunAsGroup:               ptr.To(c.SidecarUID),
			RunAsNonRoot:             ptr.To(true),
			ReadOnlyRootFilesystem:   ptr.To(true),
			AllowPrivilegeEscalation: ptr.To(false),
			Privileged:               ptr.To(false),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
	}
	if c.NativeSidecar {
		sidecar.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	}
	if c.BrokerURL != "" && c.BrokerCA != "" {
		sidecar.Env = append(sidecar.Env, corev1.EnvVar{Name: "WARDEN_BROKER_CA", Value: c.BrokerCA})
	}
	return sidecar
}
