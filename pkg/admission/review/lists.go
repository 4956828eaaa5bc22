package review

import "sync"

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
func (k *kept[T]) list(s *scanner, p *[]T, room int, elem func(i int, v *T) error) error {
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
		out = make([]T, len(buf), len(buf)+room)
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
