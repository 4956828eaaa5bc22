package review

import (
	"encoding/json"
	"sync"
)

// Strings with escapes or non-ASCII are decoded by encoding/json itself (invalid UTF-8 becomes
// U+FFFD, as it has them). The longest of them in a pod is Warden's own status annotation, the
// same for every pod of an owner, so decoded strings are remembered by their exact token
// (bounded in entries and length, dropped whole when full).

const (
	maxUnquoted     = 1024
	maxUnquotedSize = 4 << 10
	// minUnquotedSize: shorter tokens decode faster than they are looked up.
	minUnquotedSize = 64
)

var unquoted struct {
	mu sync.Mutex
	m  map[string]string
}

// unquote decodes a string token (quotes included) that skipString found valid.
func unquote(tok []byte) (string, error) {
	remembered := len(tok) >= minUnquotedSize && len(tok) <= maxUnquotedSize
	if remembered {
		unquoted.mu.Lock()
		v, ok := unquoted.m[string(tok)]
		unquoted.mu.Unlock()
		if ok {
			return v, nil
		}
	}
	var v string
	if err := json.Unmarshal(tok, &v); err != nil {
		return "", err
	}
	if remembered {
		unquoted.mu.Lock()
		if unquoted.m == nil || len(unquoted.m) >= maxUnquoted {
			unquoted.m = make(map[string]string, maxUnquoted)
		}
		unquoted.m[string(tok)] = v
		unquoted.mu.Unlock()
	}
	return v, nil
}
