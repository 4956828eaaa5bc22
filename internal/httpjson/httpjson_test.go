package httpjson

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDecode(t *testing.T) {
	type body struct {
		A string `json:"a"`
	}
	for _, tc := range []struct {
		in      string
		want    string
		tooBig  bool
		invalid bool
	}{
		{in: `{"a":"x"}`, want: "x"},
		{in: ` {"a":"x"} `, want: "x"},
		{in: `{"a":"x","b":1}`, invalid: true},
		{in: `{"a":"x"}{"a":"y"}`, invalid: true},
		{in: `{"a":"x"} trailing`, invalid: true},
		{in: `{"a":`, invalid: true},
		{in: ``, invalid: true},
		{in: `[]`, invalid: true},
		{in: `{"a":"` + strings.Repeat("x", 100) + `"}`, tooBig: true},
		{in: `{"a":"x"}` + strings.Repeat(" ", 100), tooBig: true},
	} {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.in))
		var b body
		err := Decode(httptest.NewRecorder(), r, &b, 64)
		var mb *http.MaxBytesError
		switch {
		case tc.tooBig:
			assert.ErrorAs(t, err, &mb, tc.in)
		case tc.invalid:
			assert.ErrorIs(t, err, ErrMalformed, tc.in)
		default:
			require.NoError(t, err, tc.in)
			assert.Equal(t, tc.want, b.A)
		}
	}
}

func TestMappingAndErrors(t *testing.T) {
	errA, errB := errors.New("a"), errors.New("b")
	m := Mapping{{Err: errA, Status: 403, Code: CodeForbidden}, {Err: errB, Status: 404, Code: CodeNotFound}}
	for _, tc := range []struct {
		err    error
		status int
		code   Code
	}{
		{fmt.Errorf("wrapped: %w", errA), 403, CodeForbidden},
		{errors.Join(errors.New("x"), errB), 404, CodeNotFound},
		{&http.MaxBytesError{Limit: 1}, 413, CodePayloadTooLarge},
		{errors.New("surprise"), 500, CodeInternal},
	} {
		s, c := m.Lookup(tc.err)
		assert.Equal(t, tc.status, s, "%v", tc.err)
		assert.Equal(t, tc.code, c, "%v", tc.err)
	}

	rec := httptest.NewRecorder()
	WriteError(rec, 409, CodeConflict, "changed")
	assert.Equal(t, 409, rec.Code)
	assert.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	var e ErrorBody
	require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &e))
	assert.Equal(t, ErrorBody{Error: "changed", Code: CodeConflict}, e)
}
