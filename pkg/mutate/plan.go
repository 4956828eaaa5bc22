package mutate

import (
	"path"
	"strconv"

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

// subPath is the part of the staging volume an app container sees: the owner's folder for apps
// and jobs (one folder per caller inside), only the owner's own caller folder for workspaces.
func subPath(env, owner string, w api.Workload) string {
	dir := api.OwnerDir(owner)
	if w == api.WorkloadWorkspace {
		return path.Join(env, dir, dir)
	}
	return path.Join(env, dir)
}

func (c *Config) plan(owner, env string, w api.Workload) *plan {
	port := strconv.Itoa(int(c.SidecarPort))
	args := []string{
		"--listen=127.0.0.1:" + port,
		"--owner=" + owner,
		"--environment=" + env,
		"--snapshot-root=" + api.SidecarSnapshotRoot,
		"--staging-root=" + api.SidecarStagingRoot,
		"--state-dir=" + api.SidecarStateDir,
		"--token-file=" + api.SidecarTokenFile,
		"--workload=" + string(w),
	}
	if c.BrokerURL != "" {
		args = append(args, "--broker-url="+c.BrokerURL)
	}
	if c.VaultAddr != "" {
		args = append(args, "--vault-addr="+c.VaultAddr)
	}
	// The sidecar listens on loopback only, which kubelet's HTTP probes cannot reach (they dial
	// the pod IP), so probes run the binary's own probe command inside the container.
	probe := func(period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{
				Command: []string{"/warden-sidecar", "probe", "http://127.0.0.1:" + port + "/readyz"},
			}},
			PeriodSeconds:    period,
			TimeoutSeconds:   2,
			FailureThreshold: failures,
		}
	}
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
		StartupProbe:             probe(1, 30),
		LivenessProbe:            probe(20, 3),
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

	volumes := []corev1.Volume{
		{Name: api.VolumeStaging, VolumeSource: c.StagingVolume},
		{Name: api.VolumeSnapshots, VolumeSource: c.SnapshotVolume},
		{Name: api.VolumeState, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		{Name: api.VolumeToken, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
			Sources: []corev1.VolumeProjection{{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{
				Audience:          api.TokenAudience,
				ExpirationSeconds: ptr.To(c.TokenExpirationSeconds),
				Path:              "token",
			}}},
		}}},
	}
	names := make([]string, len(volumes))
	for i, v := range volumes {
		names[i] = v.Name
	}
	return &plan{
		volumes: volumes,
		sidecar: sidecar,
		appMount: corev1.VolumeMount{
			Name:      api.VolumeStaging,
			MountPath: api.DataDir,
			SubPath:   subPath(env, owner, w),
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
