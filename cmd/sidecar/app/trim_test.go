package app

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestIdleTrim(t *testing.T) {
	var frees int
	tr := &idleTrim{free: func() { frees++ }}
	h := tr.wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	serve := func() { h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/", nil)) }

	assert.False(t, tr.tick(time.Now().Add(time.Hour)), "no request yet: nothing to give back")
	serve()
	served := time.Unix(0, tr.last.Load())
	for _, tc := range []struct {
		name  string
		at    time.Duration
		trims bool
	}{
		{"still busy", trimAfter / 2, false},
		{"quiet long enough", trimAfter, true},
		{"already trimmed", 2 * trimAfter, false},
	} {
		assert.Equal(t, tc.trims, tr.tick(served.Add(tc.at)), tc.name)
	}
	assert.Equal(t, 1, frees)

	serve()
	assert.True(t, tr.tick(time.Unix(0, tr.last.Load()).Add(trimAfter)), "a new burst is trimmed again")
	assert.Equal(t, 2, frees)
}
