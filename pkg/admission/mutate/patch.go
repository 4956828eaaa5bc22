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

// opOverhead is what an operation adds besides its path and value: `,{"op":"add","path":"`,
// `","value":` and `}`.
const opOverhead = 32

// add appends an add operation. Paths are []byte so that container paths are built on the
// stack (a constant converts without allocating); they are built from array indexes and escaped
// fixed names, so no character needs quoting.
func (p *patch) add(path []byte, value []byte) {
	p.open(path)
	p.buf = append(p.buf, value...)
	p.close()
}

// open starts an add operation up to its value, which the caller appends to buf, then close.
func (p *patch) open(path []byte) {
	if p.n == 0 {
		p.buf = append(p.buf, '[')
	} else {
		p.buf = append(p.buf, ',')
	}
	p.n++
	p.buf = append(p.buf, `{"op":"add","path":"`...)
	p.buf = append(p.buf, path...)
	p.buf = append(p.buf, `","value":`...)
}

func (p *patch) close() { p.buf = append(p.buf, '}') }

// appendTo adds items to the array at path, creating it when the object has none (or an empty one).
func (p *patch) appendTo(path []byte, existing int, array []byte, items [][]byte) {
	if existing == 0 {
		p.add(path, array)
		return
	}
	path = append(path, "/-"...)
	for _, it := range items {
		p.add(path, it)
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

// statusPath is where the status annotation goes in a pod that has annotations already.
var statusPath = "/metadata/annotations/" + escape(contract.AnnotationStatus)

// appendQuoted appends s as a JSON string. The status annotation is ASCII (JSON and base64),
// which is written with its quotes and backslashes escaped; anything else goes through
// encoding/json.
func appendQuoted(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x80 {
			return append(b, mustMarshal(s)...)
		}
	}
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '"' || c == '\\' {
			b = append(b, '\\')
		}
		b = append(b, s[i])
	}
	return append(b, '"')
}

// quotedLen bounds len(appendQuoted(nil, s)): exact for ASCII, six bytes a byte otherwise.
func quotedLen(s string) int {
	n := len(s) + 2
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20 || c >= 0x80:
			return 6*len(s) + 2
		case c == '"' || c == '\\':
			n++
		}
	}
	return n
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
		var scratch [64]byte
		for i := range cs {
			ct := &cs[i]
			if ct.Name == contract.SidecarName || hasAppMount(ct) {
				continue
			}
			base := append(append(append(scratch[:0], "/spec/"...), list...), '/')
			base = strconv.AppendInt(base, int64(i), 10)
			// Each path is appended to base in the same scratch space: add copies it at once.
			p.appendTo(append(base, "/volumeMounts"...), len(ct.VolumeMounts), r.mounts, [][]byte{r.mount})
			p.appendTo(append(base, "/env"...), len(ct.Env), r.envs, r.env)
		}
	}
	if c.NativeSidecar {
		visit("initContainers", spec.InitContainers)
	}
	visit("containers", spec.Containers)
}

// injectSize bounds the length of injectPatch's patch, so that it is one allocation.
func (c *Config) injectSize(spec *corev1.PodSpec, r *rendered, annotation string) int {
	const op = opOverhead + len("/spec/initContainers/-")
	// Per container: the mount, as a new array or one more item; the env, likewise.
	mounts := op + len("/999/volumeMounts/-") + max(len(r.mounts), len(r.mount))
	envItems := len(r.env) * (op + len("/999/env/-"))
	for _, e := range r.env {
		envItems += len(e)
	}
	env := max(op+len("/999/env")+len(r.envs), envItems)
	n := (len(spec.Containers) + len(spec.InitContainers)) * (mounts + env)
	volumes := len(r.volumes) * op
	for _, v := range r.volumes {
		volumes += len(v)
	}
	n += max(len(r.volumesArray)+op, volumes) + max(len(r.sidecars), len(r.sidecar)) + op
	return n + quotedLen(annotation) + len(statusPath) + len(`{"":}`+contract.AnnotationStatus) + op + 2
}

// injectPatch is the full patch for a pod that has no Warden parts yet; annotation is the
// sealed status.
func (c *Config) injectPatch(pod *corev1.Pod, r *rendered, annotation string) []byte {
	spec := &pod.Spec
	p := patch{buf: make([]byte, 0, c.injectSize(spec, r, annotation))}
	c.appContainerOps(&p, spec, r)
	p.appendTo([]byte("/spec/volumes"), len(spec.Volumes), r.volumesArray, r.volumes)
	// Container ops above use the original indexes, so the sidecar goes in last. As the first
	// init container it is ready before any other init container runs.
	switch {
	case c.NativeSidecar && len(spec.InitContainers) > 0:
		p.add([]byte("/spec/initContainers/0"), r.sidecar)
	case c.NativeSidecar:
		p.add([]byte("/spec/initContainers"), r.sidecars)
	default:
		p.appendTo([]byte("/spec/containers"), len(spec.Containers), r.sidecars, [][]byte{r.sidecar})
	}
	// The annotation is quoted straight into the patch: one allocation for the whole of it.
	if len(pod.Annotations) == 0 {
		p.open([]byte("/metadata/annotations"))
		p.buf = append(p.buf, `{"`+contract.AnnotationStatus+`":`...)
		p.buf = appendQuoted(p.buf, annotation)
		p.buf = append(p.buf, '}')
	} else {
		p.open([]byte(statusPath))
		p.buf = appendQuoted(p.buf, annotation)
	}
	p.close()
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

// inject turns pod into the pod as the patch leaves it, from the same plan, so the guard judges
// the final pod before Warden answers. It works in place (the decoded pod is the handler's own
// and the patch is built first, from the original indexes), so a pod's lists are not copied.
func (c *Config) inject(pod *corev1.Pod, r *rendered, annotation string) *corev1.Pod {
	if pod.Annotations == nil {
		pod.Annotations = make(map[string]string, 1)
	}
	pod.Annotations[contract.AnnotationStatus] = annotation
	spec := &pod.Spec
	spec.Volumes = append(spec.Volumes, r.plan.volumes...)
	withMount := func(cs []corev1.Container) {
		for i := range cs {
			if cs[i].Name != contract.SidecarName && !hasAppMount(&cs[i]) {
				// The mount is what the invariant judges; the env the patch adds is not.
				cs[i].VolumeMounts = append(cs[i].VolumeMounts, r.appMount)
			}
		}
	}
	withMount(spec.Containers)
	if c.NativeSidecar {
		withMount(spec.InitContainers)
		spec.InitContainers = slices.Insert(spec.InitContainers, 0, r.plan.sidecar)
	} else {
		spec.Containers = append(spec.Containers, r.plan.sidecar)
	}
	return pod
}
