package review

import (
	"encoding/binary"
	"strconv"
	"strings"
	"testing"
)

// special must flag exactly the words that hold a byte the byte loop stops at.
func FuzzSpecial(f *testing.F) {
	for _, s := range []string{"abcdefgh", "abc\"efgh", "abcdefg\\", "\x1fbcdefgh", "abcdefg\x80", "\xff\xff\xff\xff\xff\xff\xff\xff", "        ", "!!!!!!!!", "~~~~~~~~", "\x20\x21\x22\x23\x5b\x5c\x5d\x7f"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 8 {
			return
		}
		want := false
		for _, c := range b[:8] {
			want = want || !plainByte[c]
		}
		if got := special(binary.LittleEndian.Uint64(b)) != 0; got != want {
			t.Fatalf("special(%q) = %v, want %v", b[:8], got, want)
		}
	})
}

// Every byte value at every position of a word, among each plain filler byte.
func TestSpecialEveryByte(t *testing.T) {
	var w [8]byte
	for fill := 0x20; fill < 0x80; fill++ {
		if !plainByte[fill] {
			continue
		}
		for pos := range w {
			for c := range 256 {
				for i := range w {
					w[i] = byte(fill)
				}
				w[pos] = byte(c)
				if got := special(binary.LittleEndian.Uint64(w[:])) != 0; got != !plainByte[c] {
					t.Fatalf("special(%q) = %v", w, got)
				}
			}
		}
	}
}

// Env names are kept only in Warden's prefix, however the JSON spells them.
func TestReservedEnvNames(t *testing.T) {
	for in, want := range map[string]string{
		`"PATH"`: "", `"WARDEN_PORT"`: "WARDEN_PORT", `"WARDEN\u005fPORT"`: "WARDEN_PORT",
		`"\u0050ATH"`: "", `"WARDEN_"`: "WARDEN_", `"warden_port"`: "", `null`: "before",
	} {
		got := "before"
		s := &scanner{b: []byte(in)}
		if err := s.reservedName(&got); err != nil || got != want || s.i != len(in) {
			t.Errorf("reservedName(%s) = %q at %d, %v; want %q", in, got, s.i, err, want)
		}
	}
	for _, bad := range []string{`5`, `"unterminated`, `"\x01"`} {
		var got string
		if err := (&scanner{b: []byte(bad)}).reservedName(&got); err == nil {
			t.Errorf("reservedName(%q) accepted", bad)
		}
	}
}

// Strings share slabs of text: each must keep its value however many are read after it, and
// whatever its length or escapes, and the input may be reused once read.
func TestKeptStringsStayIntact(t *testing.T) {
	var input []byte
	var want []string
	input = append(input, '[')
	for i := 0; i < 500; i++ {
		v := strings.Repeat(string(rune('a'+i%26)), i%300) + strconv.Itoa(i)
		if i%7 == 0 {
			v += "\u00e9\n" // escaped and non-ASCII: decoded, then kept
		}
		want = append(want, v)
		if i > 0 {
			input = append(input, ',')
		}
		input = strconv.AppendQuote(input, v)
	}
	input = append(input, ']')
	s := &scanner{b: input}
	var got []string
	if err := s.strings(&got); err != nil {
		t.Fatal(err)
	}
	clear(input)
	if len(got) != len(want) {
		t.Fatalf("read %d strings, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("string %d = %q, want %q", i, got[i], want[i])
		}
	}
}
