package mutate

import (
	"encoding/json"
	"strconv"
	"strings"

	"gomodules.xyz/jsonpatch/v2"
	corev1 "k8s.io/api/core/v1"

	"github.com/warden-dev/warden/pkg/api"
)

// The patch is built from add operations only, addressed into the raw object the API server
// sent. Nothing is ever re-serialized from the typed Pod, so fields this binary's k8s.io/api does
// not know (a newer cluster's) pass through untouched.

func add(p string, v any) jsonpatch.Operation {
	return jsonpatch.Operation{Operation: "add", Path: p, Value: v}
}

// escape encodes a JSON-pointer token (RFC 6901).
func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// appendOps adds items to the array at p, creating it when the object has none (or an empty one).
func appendOps[T any](ops []jsonpatch.Operation, p string, existing int, items ...T) []jsonpatch.Operation {
	if existing == 0 {
		return append(ops, add(p, items))
	}
	for _, it := range items {
		ops = append(ops, add(p+"/-", it))
	}
	return ops
}

// hasMount reports whether c already mounts the staging volume at the data directory.
func hasAppMount(c *corev1.Container) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == api.VolumeStaging && m.MountPath == api.DataDir {
			return true
		}
	}
	return false
}

// appContainerOps gives every app container lacking it the read-only data mount and the env.
// In native mode init containers get them too: they start after the sidecar and may use it.
func (c *Config) appContainerOps(spec *corev1.PodSpec, pl *plan) (ops []jsonpatch.Operation, names []string) {
	visit := func(list string, cs []corev1.Container) {
		for i := range cs {
			ct := &cs[i]
			if ct.Name == api.SidecarName || hasAppMount(ct) {
				continue
			}
			base := "/spec/" + list + "/" + strconv.Itoa(i)
			ops = appendOps(ops, base+"/volumeMounts", len(ct.VolumeMounts), pl.appMount)
			ops = appendOps(ops, base+"/env", len(ct.Env), pl.appEnv...)
			names = append(names, ct.Name)
		}
	}
	if c.NativeSidecar {
		visit("initContainers", spec.InitContainers)
	}
	visit("containers", spec.Containers)
	return ops, names
}

// injectOps is the full patch for a pod that has no Warden parts yet.
func (c *Config) injectOps(pod *corev1.Pod, pl *plan) ([]jsonpatch.Operation, error) {
	spec := &pod.Spec
	ops, names := c.appContainerOps(spec, pl)
	pl.status.Containers = names
	ops = appendOps(ops, "/spec/volumes", len(spec.Volumes), pl.volumes...)
	// Container ops above use the original indexes, so the sidecar goes in last. As the first
	// init container it is ready before any other init container runs.
	switch {
	case c.NativeSidecar && len(spec.InitContainers) > 0:
		ops = append(ops, add("/spec/initContainers/0", pl.sidecar))
	case c.NativeSidecar:
		ops = append(ops, add("/spec/initContainers", []corev1.Container{pl.sidecar}))
	default:
		ops = appendOps(ops, "/spec/containers", len(spec.Containers), pl.sidecar)
	}
	status, err := json.Marshal(pl.status)
	if err != nil {
		return nil, err
	}
	if len(pod.Annotations) == 0 {
		ops = append(ops, add("/metadata/annotations", map[string]string{api.AnnotationStatus: string(status)}))
	} else {
		ops = append(ops, add("/metadata/annotations/"+escape(api.AnnotationStatus), string(status)))
	}
	return ops, nil
}
