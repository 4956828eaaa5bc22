package review

import (
	"encoding/binary"
	"sync"
)

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

// count is the number of elements of the array at the scanner, leaving the scanner where it
// was: commas outside strings and nested values, by a quick look over the bytes. It is only a
// capacity: it does not validate (the read that follows does, and refuses what count misjudged),
// and it is 0 for anything but an array closed before the input ends. Counting is bounded by
// the array's bytes, as elements are at least "{}" and a comma.
func (s *scanner) count() int {
	b, i := s.b, s.i
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	if i >= len(b) || b[i] != '[' {
		return 0
	}
	start, depth, commas, empty := i, 0, 0, true
	for i++; i < len(b); i++ {
		switch c := b[i]; c {
		case '"':
			if i = stringEnd(b, i); i < 0 {
				return 0
			}
			empty = false
		case '[', '{':
			depth++
			empty = false
		case ']', '}':
			if depth > 0 {
				depth--
				continue
			}
			if empty || c != ']' {
				return 0
			}
			return min(commas+1, (i-start)/3+1)
		case ',':
			if depth == 0 {
				commas++
			}
		case ' ', '\t', '\n', '\r':
		default:
			empty = false
		}
	}
	return 0
}

// stringEnd is the index of the closing quote of the string opening at b[i], -1 if none.
func stringEnd(b []byte, i int) int {
	for i++; ; {
		for i+8 <= len(b) && special(binary.LittleEndian.Uint64(b[i:])) == 0 {
			i += 8
		}
		if i >= len(b) {
			return -1
		}
		switch b[i] {
		case '"':
			return i
		case '\\':
			i += 2
		default:
			i++
		}
	}
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
