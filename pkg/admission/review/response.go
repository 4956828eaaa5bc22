package review

import (
	"encoding/base64"
	"encoding/json"
	"strconv"
	"sync"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The response review is written straight to bytes, as encoding/json writes it (the tests
// compare the two byte for byte, hostile strings included): reflection over the review and
// the base64 of the patch were a tenth of the mutating webhook's CPU. A response of a shape
// written rarely (audit annotations, warnings, a status with details or list metadata) goes
// through encoding/json.

// buffers hold request and response bodies between requests; one grown past maxPooled is let go.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 4<<10); return &b }}

const maxPooled = 256 << 10

func release(b *[]byte) {
	if cap(*b) <= maxPooled {
		buffers.Put(b)
	}
}

// encodeReview is the response review's JSON and a newline, as json.Encoder writes it.
func encodeReview(b []byte, tm metav1.TypeMeta, r *admissionv1.AdmissionResponse) ([]byte, error) {
	if !plainResponse(r) {
		out, err := json.Marshal(admissionv1.AdmissionReview{TypeMeta: tm, Response: r})
		return append(append(b, out...), '\n'), err
	}
	b = append(b, '{')
	comma := false
	if tm.Kind != "" {
		b = appendString(append(b, `"kind":`...), tm.Kind)
		comma = true
	}
	if tm.APIVersion != "" {
		if comma {
			b = append(b, ',')
		}
		b = appendString(append(b, `"apiVersion":`...), tm.APIVersion)
		comma = true
	}
	if comma {
		b = append(b, ',')
	}
	b = appendString(append(b, `"response":{"uid":`...), string(r.UID))
	b = strconv.AppendBool(append(b, `,"allowed":`...), r.Allowed)
	if s := r.Result; s != nil {
		b = append(b, `,"status":{"metadata":{}`...)
		b = appendField(b, "status", s.Status)
		b = appendField(b, "message", s.Message)
		b = appendField(b, "reason", string(s.Reason))
		if s.Code != 0 {
			b = strconv.AppendInt(append(b, `,"code":`...), int64(s.Code), 10)
		}
		b = append(b, '}')
	}
	if len(r.Patch) > 0 {
		b = append(b, `,"patch":"`...)
		b = base64.StdEncoding.AppendEncode(b, r.Patch)
		b = append(b, '"')
	}
	if r.PatchType != nil {
		b = appendString(append(b, `,"patchType":`...), string(*r.PatchType))
	}
	return append(b, "}}\n"...), nil
}

// plainResponse is whether encodeReview writes r itself.
func plainResponse(r *admissionv1.AdmissionResponse) bool {
	if len(r.AuditAnnotations) > 0 || len(r.Warnings) > 0 {
		return false
	}
	s := r.Result
	return s == nil || s.TypeMeta == (metav1.TypeMeta{}) && s.ListMeta == (metav1.ListMeta{}) && s.Details == nil
}

// appendField appends ,"key":value for a non-empty value (omitempty).
func appendField(b []byte, key, value string) []byte {
	if value == "" {
		return b
	}
	b = append(append(append(b, `,"`...), key...), `":`...)
	return appendString(b, value)
}

// appendString quotes s as encoding/json does. Plain ASCII is copied; anything else (escapes,
// HTML characters, non-ASCII, invalid UTF-8) is left to encoding/json itself.
func appendString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !plainByte[c] || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	return append(append(append(b, '"'), s...), '"')
}
