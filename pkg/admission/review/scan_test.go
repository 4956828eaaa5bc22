package review

import (
	"encoding/binary"
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
