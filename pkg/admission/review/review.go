// Package review is the admission webhooks' transport: AdmissionReview v1 over HTTP, read and
// checked once, and the admitted object decoded the way the API server encodes it.
package review

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// MaxBytes bounds an AdmissionReview body. The API server caps a request at 3 MiB, and a
// review carries the object (and, on updates, the old object) once each.
const MaxBytes = 7 << 20

// Handler serves AdmissionReview v1 over HTTP for an admission.Handler. It does what
// controller-runtime's admission.Webhook does for v1, with one decode instead of the generic
// serializer's two passes (type sniffing, then decoding), which were two thirds of the CPU spent
// per admission. The object stays raw (RawExtension), so the handler decodes only what it reads.
type Handler struct {
	Handler admission.Handler
	Log     *slog.Logger
}

// New wraps an admission handler (log may be nil).
func New(h admission.Handler, log *slog.Logger) *Handler { return &Handler{Handler: h, Log: log} }

var _ http.Handler = (*Handler)(nil)

func (rh *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// The body is read into a buffer kept between requests, and the pods' lists into slabs
	// kept likewise: strings are copied out, remembered parts copy their keys, and the raw
	// objects and pods the handlers get are only used before the response is written.
	in := buffers.Get().(*[]byte)
	defer release(in)
	review, pods, status, err := readReview(w, r, in)
	if err != nil {
		rh.log().Warn("bad admission review", "status", status, "error", err, "remote", r.RemoteAddr)
		http.Error(w, err.Error(), status)
		return
	}
	defer pods.release()
	req := admission.Request{AdmissionRequest: *review.Request}
	ctx := context.WithValue(r.Context(), podsKey{}, pods)
	// Not admission.NewContextWithRequest: Warden's handlers take the request as their argument,
	// and a copy of it on the heap for every review was read by no one.
	resp := rh.Handler.Handle(ctx, req)
	if err := resp.Complete(req); err != nil {
		resp = admission.Errored(http.StatusInternalServerError, err)
		resp.UID = req.UID
	}
	buf := buffers.Get().(*[]byte)
	defer release(buf)
	out, err := encodeReview((*buf)[:0], review.TypeMeta, &resp.AdmissionResponse)
	*buf = out
	if err != nil {
		rh.log().Error("encoding admission response", "error", err)
		http.Error(w, "encoding admission response", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if _, err := w.Write(out); err != nil && !errors.Is(err, context.Canceled) {
		rh.log().Error("writing admission response", "error", err)
	}
}

func (rh *Handler) log() *slog.Logger {
	if rh.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return rh.Log
}

// readReview validates transport and envelope: POST, JSON, bounded size, AdmissionReview v1
// with a request. Anything else is the caller's mistake (4xx), never the handler's business.
// The body is read into *buf, which it may replace with a larger one.
func readReview(w http.ResponseWriter, r *http.Request, buf *[]byte) (*admissionv1.AdmissionReview, *decodedPods, int, error) {
	if r.Method != http.MethodPost {
		return nil, nil, http.StatusMethodNotAllowed, fmt.Errorf("method %s not allowed, use POST", r.Method)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return nil, nil, http.StatusUnsupportedMediaType, fmt.Errorf("content type %q not supported, use application/json", r.Header.Get("Content-Type"))
	}
	body, err := readBody((*buf)[:0], http.MaxBytesReader(w, r.Body, MaxBytes), r.ContentLength)
	*buf = body
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, nil, http.StatusRequestEntityTooLarge, fmt.Errorf("admission review larger than %d bytes", MaxBytes)
		}
		return nil, nil, http.StatusBadRequest, fmt.Errorf("reading body: %w", err)
	}
	var review admissionv1.AdmissionReview
	pods, err := decodeReviewPods(body, &review)
	if err != nil {
		return nil, nil, http.StatusBadRequest, fmt.Errorf("decoding admission review: %w", err)
	}
	want := metav1.TypeMeta{APIVersion: admissionv1.SchemeGroupVersion.String(), Kind: "AdmissionReview"}
	if review.TypeMeta != want {
		return nil, nil, http.StatusBadRequest, fmt.Errorf("got %s %s, want %s %s (admissionReviewVersions: [v1])", review.APIVersion, review.Kind, want.APIVersion, want.Kind)
	}
	if review.Request == nil {
		return nil, nil, http.StatusBadRequest, errors.New("admission review has no request")
	}
	return &review, pods, 0, nil
}

// readBody is io.ReadAll appended to b, grown once to the announced length (the server reads no
// more than that) instead of doubling from 512 bytes. One byte more lets the final read see the
// end without growing.
func readBody(b []byte, r io.Reader, length int64) ([]byte, error) {
	if length > 0 && length <= MaxBytes {
		b = slices.Grow(b, int(length)+1)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		switch {
		case err == io.EOF:
			return b, nil
		case err != nil:
			return b, err
		}
	}
}
