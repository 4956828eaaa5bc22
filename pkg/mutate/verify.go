package mutate

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"

	"github.com/warden-dev/warden/pkg/api"
)

// verifyInjected checks a pod that carries the status annotation: either Warden injected it
// (a re-invocation, or a copy of an injected pod) and its Warden parts are exactly what this
// webhook would add now, or someone wrote the annotation to pass a hand-made "sidecar" through.
// Comparison is by subset: the API server defaults fields after each patch, and later webhooks
// may add to containers, but every field Warden sets must be present with Warden's value.
func (c *Config) verifyInjected(spec *corev1.PodSpec, pl *plan) *denial {
	forged := func(format string, args ...any) *denial {
		return deny(ReasonForgedInjection, "the pod carries %s but %s; Warden writes that annotation itself: remove it and every warden-* container and volume, and let Warden inject the pod", api.AnnotationStatus, fmt.Sprintf(format, args...))
	}
	sidecars := 0
	var sidecar *corev1.Container
	for _, nc := range allContainers(spec) {
		if nc.c.Name == api.SidecarName {
			sidecars++
			if nc.init == c.NativeSidecar {
				sidecar = nc.c
			}
		}
	}
	if sidecars != 1 || sidecar == nil {
		return forged("its %s container is missing or not where this webhook puts it", api.SidecarName)
	}
	if !subset(pl.sidecar, sidecar) {
		return forged("its %s container differs from the one this webhook injects", api.SidecarName)
	}
	for _, e := range sidecar.Env {
		if strings.HasPrefix(e.Name, "WARDEN_") && !slices.ContainsFunc(pl.sidecar.Env, func(x corev1.EnvVar) bool { return x.Name == e.Name }) {
			return forged("its sidecar sets %s", e.Name)
		}
	}
	if len(sidecar.EnvFrom) > 0 {
		return forged("its sidecar takes environment from envFrom")
	}
	for _, want := range pl.volumes {
		i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == want.Name })
		if i < 0 || !subset(want, spec.Volumes[i]) {
			return forged("volume %q is missing or differs from the one this webhook injects", want.Name)
		}
	}
	// Only the sidecar may touch the snapshot share, the state, the token, or write to staging;
	// app containers see exactly their own read-only folder.
	for _, nc := range allContainers(spec) {
		if nc.c == sidecar {
			continue
		}
		for _, m := range nc.c.VolumeMounts {
			switch m.Name {
			case api.VolumeSnapshots, api.VolumeState, api.VolumeToken:
				return forged("%s (%q) mounts %s", nc.field, nc.c.Name, m.Name)
			case api.VolumeStaging:
				if !subset(pl.appMount, m) || m.MountPath != api.DataDir {
					return forged("%s (%q) mounts %s other than read-only at %s/%s", nc.field, nc.c.Name, m.Name, api.DataDir, pl.appMount.SubPath)
				}
			}
		}
	}
	return nil
}

// subset reports whether every field set in want is set to the same value in got, after both
// are rendered as JSON. Lists of objects match when each wanted element is contained in some
// element of got; lists of scalars (command, args) must be equal.
func subset(want, got any) bool {
	return jsonSubset(toJSON(want), toJSON(got))
}

func toJSON(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return nil
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil
	}
	return out
}

func jsonSubset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok || !jsonSubset(wv, gv) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok {
			return false
		}
		objects := len(w) > 0
		for _, e := range w {
			if _, isMap := e.(map[string]any); !isMap {
				objects = false
			}
		}
		if !objects {
			return reflect.DeepEqual(w, g)
		}
		for _, we := range w {
			if !slices.ContainsFunc(g, func(ge any) bool { return jsonSubset(we, ge) }) {
				return false
			}
		}
		return true
	default:
		return reflect.DeepEqual(want, got)
	}
}
