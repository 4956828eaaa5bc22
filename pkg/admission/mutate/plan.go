package mutate

import (
	"path"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/version"
)

// plan is everything the webhook adds to one pod, as typed values. The patch and the
// already-injected check are both derived from it, so they can never disagree.
type plan struct {
	volumes  []corev1.Volume
	sidecar  corev1.Container
	appMount corev1.VolumeMount
	appEnv   []corev1.EnvVar
	status   contract.Status
}

// sidecarStartTimeout bounds how long the postStart hook waits for the sidecar to answer.
const sidecarStartTimeout = 60 * time.Second

func (c *Config) plan(owner, env string, w contract.Workload) *plan {
	port := strconv.Itoa(int(c.SidecarPort))
	args, creds := c.sidecarArgs(port, owner, env, w)
	volumes := []corev1.Volume{
		{Name: contract.VolumeStaging, VolumeSource: c.StagingVolume},
		{Name: contract.VolumeSnapshots, VolumeSource: c.SnapshotVolume},
		{Name: contract.VolumeState, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: contract.VolumeToken, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: creds}}},
	}
	names := make([]string, len(volumes))
	for i, v := range volumes {
		names[i] = v.Name
	}
	return &plan{
		volumes: volumes,
		sidecar: c.sidecar(port, args),
		appMount: corev1.VolumeMount{
			Name:      contract.VolumeStaging,
			MountPath: contract.DataDir,
			SubPath:   contract.AppSubPath(env, owner, w),
			ReadOnly:  true,
		},
		appEnv: []corev1.EnvVar{
			{Name: contract.EnvPort, Value: port},
			{Name: contract.EnvDataDir, Value: contract.DataDir},
		},
		status: contract.Status{
			Version:     version.Version,
			Owner:       owner,
			Environment: env,
			Workload:    w,
			Sidecar:     contract.SidecarName,
			Image:       c.SidecarImage,
			Native:      c.NativeSidecar,
			Volumes:     names,
		},
	}
}

// sidecarArgs are the sidecar's flags and the credentials its token volume projects.
func (c *Config) sidecarArgs(port, owner, env string, w contract.Workload) ([]string, []corev1.VolumeProjection) {
	args := []string{
		contract.Flag(contract.FlagListen, "127.0.0.1:"+port),
		contract.Flag(contract.FlagOwner, owner),
		contract.Flag(contract.FlagEnvironment, env),
		contract.Flag(contract.FlagSnapshotRoot, contract.SidecarSnapshotRoot),
		contract.Flag(contract.FlagStagingRoot, contract.SidecarStagingRoot),
		contract.Flag(contract.FlagStateDir, contract.SidecarStateDir),
		contract.Flag(contract.FlagWorkload, string(w)),
	}
	// The sidecar's credentials, in Warden's token volume: its pod certificate for the broker
	// (or, in token identity, the projected token), and the token for Vault's Kubernetes auth.
	withCert := c.SidecarIdentity == IdentityPodCertificate
	withToken := !withCert || c.VaultAddr != ""
	var creds []corev1.VolumeProjection
	if withCert {
		args = append(args, contract.Flag(contract.FlagCertFile, contract.SidecarCertFile))
		creds = append(creds, corev1.VolumeProjection{PodCertificate: &corev1.PodCertificateProjection{
			SignerName:           contract.SignerName,
			KeyType:              "ECDSAP256",
			MaxExpirationSeconds: ptr.To(c.CertificateSeconds),
			CredentialBundlePath: path.Base(contract.SidecarCertFile),
		}})
	}
	if withToken {
		args = append(args, contract.Flag(contract.FlagTokenFile, contract.SidecarTokenFile))
		creds = append(creds, corev1.VolumeProjection{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
			Audience:          contract.TokenAudience,
			ExpirationSeconds: ptr.To(c.TokenExpirationSeconds),
			Path:              path.Base(contract.SidecarTokenFile),
		}})
	}
	if c.BrokerURL != "" {
		args = append(args, contract.Flag(contract.FlagBrokerURL, c.BrokerURL))
	}
	if c.VaultAddr != "" {
		args = append(args, contract.Flag(contract.FlagVaultAddr, c.VaultAddr))
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
			Command: []string{contract.SidecarCommand, contract.SidecarProbe, readyz},
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
		Command: []string{contract.SidecarCommand, contract.SidecarProbe, contract.Flag(contract.FlagProbeWait, sidecarStartTimeout.String()), readyz},
	}}
	sidecar := corev1.Container{
		Name:            contract.SidecarName,
		Image:           c.SidecarImage,
		ImagePullPolicy: c.SidecarImagePullPolicy,
		Command:         []string{contract.SidecarCommand},
		Args:            args,
		Env: []corev1.EnvVar{
			{Name: contract.EnvPodName, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: contract.EnvPodUID, ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.uid"}}},
		},
		Resources: c.SidecarResources,
		VolumeMounts: []corev1.VolumeMount{
			{Name: contract.VolumeStaging, MountPath: contract.SidecarStagingRoot},
			{Name: contract.VolumeSnapshots, MountPath: contract.SidecarSnapshotRoot, ReadOnly: true},
			{Name: contract.VolumeState, MountPath: contract.SidecarStateDir},
			{Name: contract.VolumeToken, MountPath: contract.SidecarTokenDir, ReadOnly: true},
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
		// Ready before any app container starts, so it need not wait for the disk per copy.
		sidecar.Env = append(sidecar.Env, corev1.EnvVar{Name: contract.EnvSyncCopies, Value: "false"})
	}
	if c.BrokerURL != "" && c.BrokerCA != "" {
		sidecar.Env = append(sidecar.Env, corev1.EnvVar{Name: contract.EnvBrokerCA, Value: c.BrokerCA})
	}
	if p := c.SidecarMetricsPort; p != 0 {
		// Through the environment, so that an older sidecar image ignores it.
		sidecar.Env = append(sidecar.Env, corev1.EnvVar{Name: contract.EnvMetricsListen, Value: ":" + strconv.Itoa(int(p))})
		sidecar.Ports = []corev1.ContainerPort{{Name: contract.PortMetrics, ContainerPort: p, Protocol: corev1.ProtocolTCP}}
	}
	return sidecar
}
