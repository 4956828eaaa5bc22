package httpjson

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
)

// MaxAnswer bounds how much of an answer a client reads.
const MaxAnswer = 4 << 20

// Answer is what a server sent back to RoundTrip.
type Answer struct {
	Status int
	Header http.Header
	Body   []byte
}

// RoundTrip sends one request with body (nil: none) as JSON, setting the headers header sets
// (nil: none), and reads the answer (up to MaxAnswer bytes). Its error is the transport's:
// every answer, whatever its status, is an Answer.
func RoundTrip(ctx context.Context, hc *http.Client, method, url string, body any, header func(http.Header)) (Answer, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return Answer{}, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return Answer{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if header != nil {
		header(req.Header)
	}
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return Answer{}, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswer))
	if err != nil {
		return Answer{}, err
	}
	return Answer{Status: resp.StatusCode, Header: resp.Header, Body: data}, nil
}

// OK reports a 2xx answer.
func (a Answer) OK() bool { return a.Status/100 == 2 }

// Failure is a refusal's envelope; a body that is not one (a proxy's page, say) gives fallback
// as its message.
func (a Answer) Failure(fallback string) ErrorBody {
	var e ErrorBody
	if json.Unmarshal(a.Body, &e) != nil || e.Error == "" {
		e.Error = fallback
	}
	return e
}

// Decode reads a JSON answer into out (nil, or an empty answer: nothing to read).
func (a Answer) Decode(out any) error {
	if out == nil || len(a.Body) == 0 {
		return nil
	}
	return json.Unmarshal(a.Body, out)
}
