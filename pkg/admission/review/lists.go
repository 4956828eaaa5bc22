package review

import "sync"

// list reads an array into *p, one element by elem (i: its index), which decodes in place (v
// is valid only during the call). Like encoding/json, null leaves nil and [] an empty slice.
func list[T any](s *scanner, p *[]T, elem func(i int, v *T) error) error {
	// Room for a few first: pods' lists are short, and doubling from one costs an allocation
	// and a copy per step.
	return listCap(s, p, 4, elem)
}

// countedList is list with the elements counted first: for lists of large elements in
// little JSON (volumes, mounts, env), where growing costs more than a second look at the bytes.
// room is capacity beyond them for what the mutating webhook appends to the decoded pod, to
// judge it as the patch leaves it.
func countedList[T any](s *scanner, p *[]T, room int, elem func(i int, v *T) error) error {
	return listCap(s, p, max(s.count()+room, 1), elem)
}

// count is the number of elements of the array at the scanner (0 for anything else or
// invalid JSON, which the read that follows refuses), leaving the scanner where it was.
func (s *scanner) count() int {
	at, depth := s.i, s.depth
	n := 0
	if s.next() == '[' {
		if _, err := s.array(func() error { n++; return s.skip() }); err != nil {
			n = 0
		}
	}
	s.i, s.depth = at, depth
	return n
}

func listCap[T any](s *scanner, p *[]T, first int, elem func(i int, v *T) error) error {
	var out []T
	ok, err := s.array(func() error {
		if out == nil {
			out = make([]T, 0, first)
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

// scratch holds lists whose length is known only once read (containers: counting them would
// scan most of the pod twice). Elements are decoded into a kept list, then copied out at their
// exact length, plus room: doubling from 4 allocated twice the list for a 20-container pod.
type scratch[T any] struct{ pool sync.Pool }

// maxScratch is the longest kept list; a longer one is let go.
const maxScratch = 256

func (sc *scratch[T]) list(s *scanner, p *[]T, room int, elem func(i int, v *T) error) error {
	kept, _ := sc.pool.Get().(*[]T)
	if kept == nil {
		kept = new([]T)
	}
	buf := (*kept)[:0]
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
	if cap(buf) <= maxScratch {
		*kept = buf[:0]
		sc.pool.Put(kept)
	}
	*p = out
	return err
}
