package review

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
