package mutate

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/warden-dev/warden/pkg/contract"
	"github.com/warden-dev/warden/pkg/guard"
)

// The patch is a JSON Patch of add operations only, addressed into the raw object the API server
// sent. Nothing is ever re-serialized from the typed Pod, so fields this binary's k8s.io/api does
// not know (a newer cluster's) pass through untouched. It is written straight to bytes from
// pieces rendered once per (owner, environment, workload): admission is on the path of every pod
// creation, and reflection-based encoding of the sidecar spec was most of its cost.

// patch accumulates operations as JSON.
type patch struct {
	buf []byte
	n   int
}

func (p *patch) add(path string, value []byte) {
	if p.n == 0 {
		p.buf = append(p.buf, '[')
	} else {
		p.buf = append(p.buf, ',')
	}
	p.n++
	// Paths are built from array indexes and escaped fixed names: no character needs quoting.
	p.buf = append(p.buf, `{"op":"add","path":"`...)
	p.buf = append(p.buf, path...)
	p.buf = append(p.buf, `","value":`...)
	p.buf = append(p.buf, value...)
	p.buf = append(p.buf, '}')
}

// appendTo adds items to the array at path, creating it when the object has none (or an empty one).
func (p *patch) appendTo(path string, existing int, array []byte, items [][]byte) {
	if existing == 0 {
		p.add(path, array)
		return
	}
	for _, it := range items {
		p.add(path+"/-", it)
	}
}

// bytes is the finished patch, nil when there is nothing to do.
func (p *patch) bytes() []byte {
	if p.n == 0 {
		return nil
	}
	return append(p.buf, ']')
}

// escape encodes a JSON-pointer token (RFC 6901).
func escape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// rendered is a plan with its pieces already encoded.
type rendered struct {
	*plan
	mount, mounts     []byte // one VolumeMount; an array of it
	env               [][]byte
	envs              []byte
	volumes           [][]byte
	volumesArray      []byte
	sidecar, sidecars []byte
	// parts is the digest the status seal covers (see guard.PartsDigest).
	parts [32]byte
}

func mustMarshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		// Only Warden's own typed values are marshalled here; failing is a programming error.
		panic(err)
	}
	return b
}

func render(pl *plan) *rendered {
	r := &rendered{plan: pl}
	r.mount = mustMarshal(pl.appMount)
	r.mounts = mustMarshal([]corev1.VolumeMount{pl.appMount})
	for _, e := range pl.appEnv {
		r.env = append(r.env, mustMarshal(e))
	}
	r.envs = mustMarshal(pl.appEnv)
	for _, v := range pl.volumes {
		r.volumes = append(r.volumes, mustMarshal(v))
	}
	r.volumesArray = mustMarshal(pl.volumes)
	r.sidecar = mustMarshal(pl.sidecar)
	r.sidecars = mustMarshal([]corev1.Container{pl.sidecar})
	var err error
	if r.parts, err = guard.PartsDigest(&pl.sidecar, pl.volumes); err != nil {
		panic(err) // as in mustMarshal: only Warden's own typed values
	}
	return r
}

// planCache keeps rendered plans per (owner, environment, workload). Its size is bounded by the
// policy's owners times the workload kinds; it is dropped whole if it ever grows past maxPlans
// (policy churn), which costs one re-render per owner.
type planCache struct {
	mu    sync.Mutex
	plans map[[3]string]*rendered
}

const maxPlans = 4096

func (c *planCache) get(cfg *Config, owner, env string, w contract.Workload) *rendered {
	key := [3]string{owner, env, string(w)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.plans[key]; ok {
		return r
	}
	if c.plans == nil || len(c.plans) >= maxPlans {
		c.plans = map[[3]string]*rendered{}
	}
	r := render(cfg.plan(owner, env, w))
	c.plans[key] = r
	return r
}

// hasAppMount reports whether c already mounts the staging volume at the data directory.
func hasAppMount(c *corev1.Container) bool {
	for _, m := range c.VolumeMounts {
		if m.Name == contract.VolumeStaging && m.MountPath == contract.DataDir {
			return true
		}
	}
	return false
}

// appContainerOps gives every app container lacking it the read-only data mount and the env.
// In native mode init containers get them too: they start after the sidecar and may use it.
func (c *Config) appContainerOps(p *patch, spec *corev1.PodSpec, r *rendered) {
	visit := func(list string, cs []corev1.Container) {
		for i := range cs {
			ct := &cs[i]
			if ct.Name == contract.SidecarName || hasAppMount(ct) {
				continue
			}
			base := "/spec/" + list + "/" + strconv.Itoa(i)
			p.appendTo(base+"/volumeMounts", len(ct.VolumeMounts), r.mounts, [][]byte{r.mount})
			p.appendTo(base+"/env", len(ct.Env), r.envs, r.env)
		}
	}
	if c.NativeSidecar {
		visit("initContainers", spec.InitContainers)
	}
	visit("containers", spec.Containers)
}

// injectPatch is the full patch for a pod that has no Warden parts yet; annotation is the
// sealed status.
func (c *Config) injectPatch(pod *corev1.Pod, r *rendered, annotation string) []byte {
	spec := &pod.Spec
	// One allocation for the whole patch: the sidecar and volumes, the annotation, and a mount
	// and env per container.
	containers := len(spec.Containers) + len(spec.InitContainers)
	p := patch{buf: make([]byte, 0, len(r.sidecars)+len(r.volumesArray)+len(annotation)+containers*(len(r.mounts)+len(r.envs)+128)+256)}
	c.appContainerOps(&p, spec, r)
	p.appendTo("/spec/volumes", len(spec.Volumes), r.volumesArray, r.volumes)
	// Container ops above use the original indexes, so the sidecar goes in last. As the first
	// init container it is ready before any other init container runs.
	switch {
	case c.NativeSidecar && len(spec.InitContainers) > 0:
		p.add("/spec/initContainers/0", r.sidecar)
	case c.NativeSidecar:
		p.add("/spec/initContainers", r.sidecars)
	default:
		p.appendTo("/spec/containers", len(spec.Containers), r.sidecars, [][]byte{r.sidecar})
	}
	value := mustMarshal(annotation)
	if len(pod.Annotations) == 0 {
		p.add("/metadata/annotations", append(append([]byte(`{"`+contract.AnnotationStatus+`":`), value...), '}'))
	} else {
		p.add("/metadata/annotations/"+escape(contract.AnnotationStatus), value)
	}
	return p.bytes()
}

// appContainers names the containers appContainerOps gives the data mount.
func (c *Config) appContainers(spec *corev1.PodSpec) (names []string) {
	visit := func(cs []corev1.Container) {
		for i := range cs {
			if cs[i].Name != contract.SidecarName && !hasAppMount(&cs[i]) {
				names = append(names, cs[i].Name)
			}
		}
	}
	if c.NativeSidecar {
		visit(spec.InitContainers)
	}
	visit(spec.Containers)
	return names
}

// injected is the pod as the patch will leave it, built from the same plan, so the guard judges
// the final pod before Warden answers.
func (c *Config) injected(pod *corev1.Pod, r *rendered, annotation string) *corev1.Pod {
	out := &corev1.Pod{ObjectMeta: pod.ObjectMeta, Spec: pod.Spec}
	out.Annotations = make(map[string]string, len(pod.Annotations)+1)
	for k, v := range pod.Annotations {
		out.Annotations[k] = v
	}
	out.Annotations[contract.AnnotationStatus] = annotation
	spec := &out.Spec
	spec.Volumes = append(slices.Clip(pod.Spec.Volumes), r.plan.volumes...)
	withMount := func(cs []corev1.Container) []corev1.Container {
		out := slices.Clone(cs)
		for i := range out {
			if out[i].Name != contract.SidecarName && !hasAppMount(&out[i]) {
				// The mount is what the invariant judges; the env the patch adds is not.
				out[i].VolumeMounts = append(slices.Clip(out[i].VolumeMounts), r.appMount)
			}
		}
		return out
	}
	if c.NativeSidecar {
		spec.InitContainers = append([]corev1.Container{r.plan.sidecar}, withMount(pod.Spec.InitContainers)...)
		spec.Containers = withMount(pod.Spec.Containers)
	} else {
		spec.Containers = append(withMount(pod.Spec.Containers), r.plan.sidecar)
	}
	return out
}
