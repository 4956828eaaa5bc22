package health

import (
	"io"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestReadyz(t *testing.T) {
	var c Checks
	state := OK
	c.Add("policy", func() (State, string) { return state, "file /p: line 3 broken" })
	c.Add("tls", func() (State, string) { return OK, "serving" })

	get := func() (int, string) {
		w := httptest.NewRecorder()
		c.Readyz().ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
		b, _ := io.ReadAll(w.Body)
		return w.Code, string(b)
	}
	code, body := get()
	assert.Equal(t, 200, code)
	assert.Contains(t, body, "[ok] policy")

	state = Degraded
	code, body = get()
	assert.Equal(t, 200, code, "degraded still serves")
	assert.Contains(t, body, "[degraded] policy: file /p: line 3 broken")

	state = Failing
	code, body = get()
	assert.Equal(t, 503, code)
	assert.Contains(t, body, "[failing] policy")
	assert.Contains(t, body, "[ok] tls: serving")
	assert.Contains(t, body, "not ready")

	c.Add("policy", func() (State, string) { return OK, "replaced" })
	_, body = get()
	assert.Contains(t, body, "replaced")
}

func TestHealthz(t *testing.T) {
	w := httptest.NewRecorder()
	Healthz().ServeHTTP(w, httptest.NewRequest("GET", "/healthz", nil))
	assert.Equal(t, 200, w.Code)
}
