package review

import (
	"context"
	"sync/atomic"
	"unsafe"
)

// The envelope's scan passes over the pod anyway (to validate it), and reading the pod there
// instead saves the handler a second pass over the same bytes. When the request is about pods
// (as far as the envelope has been read when its object comes: the API server writes the kind
// and resource first), the object, and the old object, are read as ReadPod reads them during
// that scan; the handler gets the result through its context. A pod the scan cannot read is
// skipped as any value and left to the handler, which then reports what ReadPod reports.

type podsKey struct{}

// decodedPods are the pods read with the envelope, each with the bytes it was read from, and
// the slabs holding their lists.
type decodedPods struct {
	pod   [2]decodedPod
	slabs *slabs
}

// release gives the pods' slabs back once the response is written: the pods handed out are
// dead then (see slabs).
func (d *decodedPods) release() {
	if d != nil && d.slabs != nil {
		d.slabs.put()
		d.slabs = nil
	}
}

type decodedPod struct {
	raw []byte
	pod atomic.Pointer[Pod]
}

// PodOf is ReadPod(raw), taken from the envelope's scan when raw is the very object (not a
// copy) the transport read for the request in ctx; it is handed out once, and its lists are
// reused once the handler has returned (see slabs): a handler that keeps the pod keeps a copy.
func PodOf(ctx context.Context, raw []byte) (Pod, error) {
	if d, ok := ctx.Value(podsKey{}).(*decodedPods); ok && len(raw) > 0 {
		for i := range d.pod {
			if len(d.pod[i].raw) == len(raw) && unsafe.SliceData(d.pod[i].raw) == unsafe.SliceData(raw) {
				if p := d.pod[i].pod.Swap(nil); p != nil {
					return *p, nil
				}
			}
		}
	}
	return ReadPod(raw)
}

// podValue reads the value at the scanner as a pod when pod is set and it reads as one
// (into d), else as any value; either way it returns the value's bytes.
func (s *scanner) podValue(pod bool, d *decodedPod) ([]byte, error) {
	s.ws()
	start := s.i
	if pod && s.next() == '{' {
		sub := &scanner{b: s.b, i: start, depth: s.depth, text: s.text, slabs: s.slabs}
		if p, err := sub.pod(); err == nil {
			s.i, s.text = sub.i, sub.text
			d.raw = s.b[start:s.i]
			d.pod.Store(&p)
			return d.raw, nil
		}
	}
	return s.raw()
}
