package review

import (
	"sync"

	corev1 "k8s.io/api/core/v1"
)

// list reads an array into *p, one element by elem (i: its index), which decodes in place (v
// is valid only during the call). Like encoding/json, null leaves nil and [] an empty slice.
func list[T any](s *scanner, p *[]T, elem func(i int, v *T) error) error {
	var out []T
	ok, err := s.array(func() error {
		if out == nil {
			// Room for a few first: pods' lists are short, and doubling from one costs an
			// allocation and a copy per step.
			out = make([]T, 0, 4)
		}
		var zero T
		out = append(out, zero)
		return elem(len(out)-1, &out[len(out)-1])
	})
	if ok && out == nil {
		out = []T{}
	}
	*p = out
	return err
}

// A kept list reads the lists of large elements a pod has many of (containers, env, mounts,
// volumes): elements are decoded into a list kept between pods, then copied out at their exact
// length, plus room. Doubling from 4 allocated about twice the list, and counting the elements
// first (a second look at the bytes) cost more than the growth it saved.
type kept[T any] struct{ pool sync.Pool }

// maxKept is the longest list kept; a longer one is let go.
const maxKept = 256

// list is list for kept's element type; room is capacity beyond the elements, for what the
// mutating webhook appends to the decoded pod to judge it as the patch leaves it (see room).
// The list is carved from slab when it has space for it (see slabs).
func (k *kept[T]) list(s *scanner, p *[]T, slab *[]T, room int, elem func(i int, v *T) error) error {
	held, _ := k.pool.Get().(*[]T)
	if held == nil {
		held = new([]T)
	}
	buf := (*held)[:0]
	ok, err := s.array(func() error {
		var zero T
		buf = append(buf, zero)
		return elem(len(buf)-1, &buf[len(buf)-1])
	})
	var out []T
	if ok {
		out = carve(slab, len(buf), room)
		copy(out, buf)
	}
	clear(buf) // nothing of this pod stays reachable from the kept list
	if cap(buf) <= maxKept {
		*held = buf[:0]
		k.pool.Put(held)
	}
	*p = out
	return err
}

// slabs hold the lists of the pods one review's scan reads, reused from review to review: the
// copies out of the kept lists were a quarter of the bytes an admission allocated, for lists
// dead once the response is written. The transport takes a set for each review and puts it back
// after writing the response (decodedPods.release), so a handler must not keep the lists of a
// pod it got from PodOf past its return (nor does any: they judge, patch and answer); strings
// are the scanner's text, never reused, and may be kept. A pod read any other way (ReadPod) has
// lists of its own.
type slabs struct {
	containers []corev1.Container
	env        []corev1.EnvVar
	mounts     []corev1.VolumeMount
	volumes    []corev1.Volume
}

// Room for the pods of a review, object and old object, of a few dozen containers; a longer
// list than a slab has left is allocated as without slabs.
const (
	slabContainers = 32
	slabEnv        = 128
	slabMounts     = 128
	slabVolumes    = 64
)

var slabPool = sync.Pool{New: func() any {
	return &slabs{
		containers: make([]corev1.Container, 0, slabContainers),
		env:        make([]corev1.EnvVar, 0, slabEnv),
		mounts:     make([]corev1.VolumeMount, 0, slabMounts),
		volumes:    make([]corev1.Volume, 0, slabVolumes),
	}
}}

func getSlabs() *slabs { return slabPool.Get().(*slabs) }

// ownLists are no slabs at all: their lists are nil, so carve allocates every list (ReadPod's
// pods have lists of their own). carve never writes to a nil slab, so they can be shared.
var ownLists slabs

// put zeroes what the review used (nothing of it stays reachable) and returns the set.
func (l *slabs) put() {
	l.containers = reset(l.containers)
	l.env = reset(l.env)
	l.mounts = reset(l.mounts)
	l.volumes = reset(l.volumes)
	slabPool.Put(l)
}

func reset[T any](slab []T) []T {
	clear(slab)
	return slab[:0]
}

// carve returns a list of n elements with room more capacity from the free end of *slab, or
// from the heap when the slab is nil (ownLists) or has too little left. The capacity ends at the room
// (a full slice expression), so appending past it reallocates instead of running into the next
// list carved.
func carve[T any](slab *[]T, n, room int) []T {
	if *slab == nil || cap(*slab)-len(*slab) < n+room {
		return make([]T, n, n+room)
	}
	start := len(*slab)
	*slab = (*slab)[:start+n+room]
	return (*slab)[start : start+n : start+n+room]
}
