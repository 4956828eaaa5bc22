package review

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unsafe"
)

// scanner reads JSON in one pass over the bytes: it decodes what Warden judges and skips the
// rest, validating what it skips as it goes, so there is no separate validity pre-scan (which
// was a fifth of an admission's CPU). Keys match case-sensitively, as the API server's decoder
// does. Unlike encoding/json, a repeated key in an object the scanner decodes is an error: the
// API server encodes from typed objects and never repeats one, and encoding/json's answer (the
// last value, merged into the earlier one for objects) is exactly the kind of ambiguity an
// attacker could use to show the webhook one pod and the cluster another.
type scanner struct {
	b     []byte
	i     int
	depth int
	// enc collects the encodings of a pod's Warden parts (ReadPod).
	enc Encodings
	// pods are the pods read with an envelope (decodeReview).
	pods *decodedPods
	// fresh is whether the pod being read has no Warden status: one the mutating webhook
	// injects, appending to its lists to judge it as the patch leaves it.
	fresh bool
	// text holds the bytes of the strings read so far (keep).
	text []byte
	// slabs hold the lists read (see slabs); &ownLists for lists of their own.
	slabs *slabs
}

// textSlab is how many bytes of strings are allocated at once; a string longer than an eighth
// of it gets an allocation of its own.
const textSlab = 1024

// keep returns b's bytes as a string held in the scanner's text: a pod's hundred-odd strings
// (names, paths, labels) in a few allocations instead of one each, which were a third of the
// objects an admission allocated. Bytes in text are written once and never again (a full slab
// is left to its strings, never reused or grown in place), so the strings are as immutable as
// any; a string keeps its slab alive, which for the few a cache holds is a slab each at most.
func (s *scanner) keep(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > textSlab/8 {
		return string(b)
	}
	if cap(s.text)-len(s.text) < len(b) {
		s.text = make([]byte, 0, textSlab)
	}
	n := len(s.text)
	s.text = append(s.text, b...)
	return unsafe.String(&s.text[n], len(b))
}

// room is extra capacity for n elements the mutating webhook appends to a fresh pod's list
// (nothing for an injected pod, which nothing appends to). Metadata comes before the spec in
// the API server's encoding; in any other order a pod only gets no room.
func (s *scanner) room(n int) int {
	if s.fresh {
		return n
	}
	return 0
}

// maxDepth is encoding/json's nesting limit: deeper input is refused rather than recursed into.
const maxDepth = 10000

var errDuplicate = errors.New("repeated key")

func (s *scanner) fail(what string) error {
	if s.i >= len(s.b) {
		return fmt.Errorf("invalid JSON: unexpected end of input, want %s", what)
	}
	return fmt.Errorf("invalid JSON at offset %d: %q, want %s", s.i, s.b[s.i], what)
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next is the first byte of the next value (0 at the end).
func (s *scanner) next() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

// null consumes a null literal if one is next.
func (s *scanner) null() bool {
	if s.next() == 'n' && len(s.b)-s.i >= 4 && string(s.b[s.i:s.i+4]) == "null" {
		s.i += 4
		return true
	}
	return false
}

// object reads an object, calling field for each key with the scanner at its value; field must
// consume the value. A null object calls nothing and reports false.
func (s *scanner) object(field func(key []byte) error) (bool, error) {
	if s.null() {
		return false, nil
	}
	if s.next() != '{' {
		return false, s.fail("an object")
	}
	if s.depth++; s.depth > maxDepth {
		return false, errors.New("invalid JSON: nested too deeply")
	}
	defer func() { s.depth-- }()
	s.i++
	if s.next() == '}' {
		s.i++
		return true, nil
	}
	for {
		if s.next() != '"' {
			return false, s.fail("a key")
		}
		key, err := s.key()
		if err != nil {
			return false, err
		}
		if s.next() != ':' {
			return false, s.fail("':'")
		}
		s.i++
		if err := field(key); err != nil {
			return false, err
		}
		switch s.next() {
		case ',':
			s.i++
		case '}':
			s.i++
			return true, nil
		default:
			return false, s.fail("',' or '}'")
		}
	}
}

// array reads an array, calling elem with the scanner at each element. A null array calls
// nothing and reports false.
func (s *scanner) array(elem func() error) (bool, error) {
	if s.null() {
		return false, nil
	}
	if s.next() != '[' {
		return false, s.fail("an array")
	}
	if s.depth++; s.depth > maxDepth {
		return false, errors.New("invalid JSON: nested too deeply")
	}
	defer func() { s.depth-- }()
	s.i++
	if s.next() == ']' {
		s.i++
		return true, nil
	}
	for {
		if err := elem(); err != nil {
			return false, err
		}
		switch s.next() {
		case ',':
			s.i++
		case ']':
			s.i++
			return true, nil
		default:
			return false, s.fail("',' or ']'")
		}
	}
}

// key reads a string token as bytes: the input itself when it has no escapes (no allocation),
// else its decoded value.
func (s *scanner) key() ([]byte, error) {
	start := s.i
	plain, err := s.skipString()
	if err != nil {
		return nil, err
	}
	if plain {
		return s.b[start+1 : s.i-1], nil
	}
	var v string
	if err := json.Unmarshal(s.b[start:s.i], &v); err != nil {
		return nil, err
	}
	return []byte(v), nil
}

// str reads a string; null leaves *p as it is, as encoding/json does.
func (s *scanner) str(p *string) error {
	return s.strWith(p, s.keep)
}

// strWith reads a string as str does, keeping of it what keep makes of its value's bytes, which
// keep must copy what it keeps of: they are the input's, or a decoded string's.
func (s *scanner) strWith(p *string, keep func(plain []byte) string) error {
	if s.null() {
		return nil
	}
	if s.next() != '"' {
		return s.fail("a string")
	}
	start := s.i
	plain, err := s.skipString()
	if err != nil {
		return err
	}
	if plain {
		*p = keep(s.b[start+1 : s.i-1])
		return nil
	}
	v, err := unquote(s.b[start:s.i])
	if err == nil {
		*p = keep(unsafe.Slice(unsafe.StringData(v), len(v)))
	}
	return err
}

// plainByte marks the bytes that stand for themselves in a string: printable ASCII other than
// the quote and the backslash. Strings are most of a pod's bytes, and a run of these is skipped
// in a loop that looks at nothing else.
var plainByte = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Eight bytes at a time, a word holds nothing that ends a plain run when no byte is below 0x20,
// at or above 0x80, a quote or a backslash. The classic bit tricks: a byte of v is zero where
// (v-ones) &^ v has its high bit, a byte of w is below n (n <= 0x80) where (w-n*ones) &^ w has.
// Borrows can mark bytes above a real hit, never below it or without one, so a marked word only
// goes to the byte loop, which finds the byte itself.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special is nonzero when w (eight string bytes, little-endian) has a byte that is not plain.
func special(w uint64) uint64 {
	quote, backslash := w^(ones*'"'), w^(ones*'\\')
	control := (w - ones*0x20) &^ w
	return (control | (quote-ones)&^quote | (backslash-ones)&^backslash | w) & highs
}

// skipString moves past a string token, reporting whether it is plain ASCII without escapes.
func (s *scanner) skipString() (bool, error) {
	s.i++ // the opening quote
	plain := true
	for {
		b, i := s.b, s.i
		for i+8 <= len(b) && special(binary.LittleEndian.Uint64(b[i:])) == 0 {
			i += 8
		}
		for i < len(b) && plainByte[b[i]] {
			i++
		}
		s.i = i
		if i >= len(b) {
			return false, s.fail("'\"'")
		}
		switch c := b[i]; {
		case c == '"':
			s.i++
			return plain, nil
		case c == '\\':
			plain = false
			if err := s.escape(); err != nil {
				return false, err
			}
		case c < 0x20:
			return false, s.fail("a string character")
		default: // non-ASCII: decoded (invalid UTF-8 replaced) as encoding/json does
			plain = false
			s.i++
		}
	}
}

// escape moves past a backslash escape in a string.
func (s *scanner) escape() error {
	s.i++
	if s.i >= len(s.b) {
		return s.fail("an escape")
	}
	switch s.b[s.i] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		s.i++
	case 'u':
		if len(s.b)-s.i < 5 {
			return s.fail("four hex digits")
		}
		for _, h := range s.b[s.i+1 : s.i+5] {
			if !isHex(h) {
				return s.fail("four hex digits")
			}
		}
		s.i += 5
	default:
		return s.fail("an escape")
	}
	return nil
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// boolean reads true or false; null leaves *p as it is.
func (s *scanner) boolean(p *bool) error {
	if s.null() {
		return nil
	}
	switch {
	case s.literal("true"):
		*p = true
	case s.literal("false"):
		*p = false
	default:
		return s.fail("a boolean")
	}
	return nil
}

// boolPtr reads a *bool; null sets it nil, as encoding/json does.
func (s *scanner) boolPtr(p **bool) error {
	if s.null() {
		*p = nil
		return nil
	}
	var v bool
	if err := s.boolean(&v); err != nil {
		return err
	}
	*p = &v
	return nil
}

func (s *scanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// int32 reads an integer that fits int32; null leaves *p as it is.
func (s *scanner) int32(p *int32) error {
	if s.null() {
		return nil
	}
	start := s.i
	if err := s.skipNumber(); err != nil {
		return err
	}
	n, err := strconv.ParseInt(string(s.b[start:s.i]), 10, 32)
	if err != nil {
		return fmt.Errorf("cannot read number %s as int32", s.b[start:s.i])
	}
	*p = int32(n)
	return nil
}

// skipNumber moves past a number as RFC 8259 spells it.
func (s *scanner) skipNumber() error {
	digits := func() int {
		n := 0
		for s.i < len(s.b) && '0' <= s.b[s.i] && s.b[s.i] <= '9' {
			s.i++
			n++
		}
		return n
	}
	if s.next() == '-' {
		s.i++
	}
	switch {
	case s.i < len(s.b) && s.b[s.i] == '0':
		s.i++
	case digits() == 0:
		return s.fail("a number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if digits() == 0 {
			return s.fail("a digit")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if digits() == 0 {
			return s.fail("a digit")
		}
	}
	return nil
}

// skip moves past any value, validating it.
func (s *scanner) skip() error {
	switch s.next() {
	case '{':
		_, err := s.object(func([]byte) error { return s.skip() })
		return err
	case '[':
		_, err := s.array(s.skip)
		return err
	case '"':
		_, err := s.skipString()
		return err
	case 't', 'f':
		var b bool
		return s.boolean(&b)
	case 'n':
		if s.null() {
			return nil
		}
	}
	return s.skipNumber()
}

// raw moves past a value and returns its bytes, nil for null.
func (s *scanner) raw() ([]byte, error) {
	s.ws()
	start := s.i
	if s.null() {
		return nil, nil
	}
	if err := s.skip(); err != nil {
		return nil, err
	}
	return s.b[start:s.i], nil
}

// end checks that only whitespace follows the top-level value.
// end refuses anything but whitespace after the value (a NUL byte included: next's 0 is not
// the end of input).
func (s *scanner) end() error {
	s.ws()
	if s.i < len(s.b) {
		return s.fail("the end of input")
	}
	return nil
}
