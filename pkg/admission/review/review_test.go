package review

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// echo allows everything and patches nothing, recording the request it saw.
type echo struct{ got *admission.Request }

func (e echo) Handle(_ context.Context, req admission.Request) admission.Response {
	*e.got = req
	return admission.Patched("", admission.Allowed("").Patches...)
}

const goodReview = `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"},"resource":{"group":"","version":"v1","resource":"pods"},"namespace":"apps","operation":"CREATE","userInfo":{"username":"alice"},"object":{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"spec":{"containers":[{"name":"c","image":"i"}]}}}}`

func serveReview(t *testing.T, method, contentType, body string) (*httptest.ResponseRecorder, admission.Request) {
	t.Helper()
	var got admission.Request
	rh := &Handler{Handler: echo{&got}}
	r := httptest.NewRequest(method, "/mutate-v1-pod", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	w := httptest.NewRecorder()
	rh.ServeHTTP(w, r)
	return w, got
}

func TestReviewRoundTrip(t *testing.T) {
	w, got := serveReview(t, http.MethodPost, "application/json; charset=utf-8", goodReview)
	require.Equal(t, 200, w.Code, w.Body.String())
	assert.Equal(t, "u-1", string(got.UID))
	assert.Equal(t, "alice", got.UserInfo.Username)
	assert.Contains(t, string(got.Object.Raw), `"containers"`, "object passed on raw")
	var out admissionv1.AdmissionReview
	require.NoError(t, json.Unmarshal(w.Body.Bytes(), &out))
	assert.Equal(t, "admission.k8s.io/v1", out.APIVersion)
	assert.Equal(t, "AdmissionReview", out.Kind)
	require.NotNil(t, out.Response)
	assert.Equal(t, "u-1", string(out.Response.UID), "response carries the request UID")
	assert.True(t, out.Response.Allowed)
}

func TestReviewRejectsBadInput(t *testing.T) {
	for _, tc := range []struct {
		name, method, ctype, body string
		code                      int
	}{
		{"GET", http.MethodGet, "application/json", goodReview, 405},
		{"no content type", http.MethodPost, "", goodReview, 415},
		{"yaml", http.MethodPost, "application/yaml", goodReview, 415},
		{"malformed JSON", http.MethodPost, "application/json", `{"apiVersion":`, 400},
		{"not an object", http.MethodPost, "application/json", `[1,2]`, 400},
		{"v1beta1", http.MethodPost, "application/json", strings.Replace(goodReview, "admission.k8s.io/v1", "admission.k8s.io/v1beta1", 1), 400},
		{"wrong kind", http.MethodPost, "application/json", strings.Replace(goodReview, `"kind":"AdmissionReview"`, `"kind":"Pod"`, 1), 400},
		{"case-folded fields", http.MethodPost, "application/json", strings.Replace(goodReview, `"apiVersion"`, `"APIVERSION"`, 1), 400},
		{"no request", http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`, 400},
		{"oversized", http.MethodPost, "application/json", `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","x":"` + strings.Repeat("a", MaxBytes) + `"}`, 413},
		{"empty", http.MethodPost, "application/json", ``, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, got := serveReview(t, tc.method, tc.ctype, tc.body)
			assert.Equal(t, tc.code, w.Code, w.Body.String())
			assert.Empty(t, got.UID, "handler must not be called")
		})
	}
}

func BenchmarkReviewDecode(b *testing.B) {
	var got admission.Request
	rh := &Handler{Handler: echo{&got}}
	body := []byte(goodReview)
	b.ReportAllocs()
	for b.Loop() {
		r := httptest.NewRequest(http.MethodPost, "/mutate-v1-pod", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		rh.ServeHTTP(httptest.NewRecorder(), r)
	}
}

func TestReadBody(t *testing.T) {
	body := strings.Repeat("x", 1000)
	for _, tc := range []struct {
		name   string
		length int64
	}{
		{"unknown", -1}, {"zero", 0}, {"exact", 1000}, {"announced short", 10}, {"announced long", 5000}, {"over the limit", MaxBytes + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readBody(nil, iotest.OneByteReader(strings.NewReader(body)), tc.length)
			require.NoError(t, err)
			assert.Equal(t, body, string(got))
			// A kept buffer, larger or smaller than the body, holding an earlier one.
			for _, kept := range [][]byte{[]byte("old"), make([]byte, 0, 4096)} {
				got, err = readBody(kept[:0], iotest.OneByteReader(strings.NewReader(body)), tc.length)
				require.NoError(t, err)
				assert.Equal(t, body, string(got))
			}
		})
	}
	_, err := readBody(nil, iotest.ErrReader(errors.New("boom")), 10)
	assert.EqualError(t, err, "boom")
}

// Bodies are read into buffers kept between requests: what a handler was given must not change
// when the next request reuses the buffer (nothing decoded may alias it).
func TestDecodedValuesOutliveTheBuffer(t *testing.T) {
	const pod = `{"metadata":{"name":"NAME","labels":{"app":"NAME"},"annotations":{"a":"NAME"}},"spec":{"serviceAccountName":"NAME","containers":[{"name":"NAME","env":[{"name":"NAME"}],"volumeMounts":[{"name":"NAME","mountPath":"/NAME"}]},{"name":"warden-sidecar","image":"NAME"}],"volumes":[{"name":"warden-NAME","emptyDir":{}},{"name":"NAME","configMap":{"name":"NAME"}}]}}`
	review := func(name string) string {
		return strings.NewReplacer("OBJ", strings.ReplaceAll(pod, "NAME", name), "NAME", name).Replace(
			`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"NAME","namespace":"NAME","resource":{"group":"","version":"v1","resource":"pods"},"userInfo":{"username":"NAME","groups":["NAME"]},"object":OBJ}}`)
	}
	h := podOfHandler{got: map[string]Pod{}, given: map[string]*corev1.Pod{}}
	var req admission.Request
	serve := func(name string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(review(name)))
		r.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		(&Handler{Handler: both{h, echo{&req}}}).ServeHTTP(w, r)
		require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	}
	serve("first")
	got, gotReq := h.got["object1"], req
	want, err := ReadPod([]byte(strings.ReplaceAll(pod, "NAME", "first")))
	require.NoError(t, err)
	wantReq := gotReq.DeepCopy()
	for range 3 {
		serve("later") // same length as "first": the same buffer, overwritten in place
	}
	assert.Equal(t, want, got)
	assert.Equal(t, wantReq.UID, gotReq.UID)
	assert.Equal(t, "first", gotReq.Namespace)
	assert.Equal(t, wantReq.UserInfo, gotReq.UserInfo)
}

// both runs two handlers on one request, answering with the second's response.
type both [2]admission.Handler

func (b both) Handle(ctx context.Context, req admission.Request) admission.Response {
	b[0].Handle(ctx, req)
	return b[1].Handle(ctx, req)
}

// The lists of the pods a review's scan reads are carved from slabs reused by later reviews:
// concurrent reviews of different pods must each see their own pod, appending to it (as the
// mutating webhook does, into the room a fresh pod's lists have) without reaching another list.
func TestSlabsAreEachReviewsOwn(t *testing.T) {
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 50 {
				n := 1 + (g*50+i)%7
				var cs []string
				for c := range n {
					cs = append(cs, fmt.Sprintf(`{"name":"c%d-%d","env":[{"name":"WARDEN_%d"}],"volumeMounts":[{"name":"v%d","mountPath":"/m%d"}]}`, g, c, i, c, c))
				}
				pod := fmt.Sprintf(`{"metadata":{"name":"p"},"spec":{"containers":[%s],"volumes":[{"name":"v%d","emptyDir":{}}]}}`, strings.Join(cs, ","), g)
				body := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","resource":{"group":"","version":"v1","resource":"pods"},"object":` + pod + `}}`
				r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				(&Handler{Handler: ownPod{t: t, raw: pod}}).ServeHTTP(w, r)
				if w.Code != http.StatusOK {
					t.Errorf("status %d: %s", w.Code, w.Body.String())
				}
			}
		}()
	}
	wg.Wait()
}

// ownPod checks the pod it is given against ReadPod's, before and after appending to its lists.
type ownPod struct {
	t   *testing.T
	raw string
}

func (o ownPod) Handle(ctx context.Context, req admission.Request) admission.Response {
	p, err := PodOf(ctx, req.Object.Raw)
	want, err2 := ReadPod([]byte(o.raw))
	if err != nil || err2 != nil || !reflect.DeepEqual(p.Pod, want.Pod) {
		o.t.Errorf("pod as given differs from ReadPod's (%v, %v)", err, err2)
		return admission.Allowed("")
	}
	// More than the room each list has, so that a list reaching into the next would show.
	grow := func(spec *corev1.PodSpec) {
		for i := range spec.Containers {
			spec.Containers[i].VolumeMounts = append(spec.Containers[i].VolumeMounts, corev1.VolumeMount{Name: "a"}, corev1.VolumeMount{Name: "b"}, corev1.VolumeMount{Name: "c"})
			spec.Containers[i].Env = append(spec.Containers[i].Env, corev1.EnvVar{Name: "A"}, corev1.EnvVar{Name: "B"})
		}
		spec.Containers = append(spec.Containers, corev1.Container{Name: "x"}, corev1.Container{Name: "y"})
		for range 6 {
			spec.Volumes = append(spec.Volumes, corev1.Volume{Name: "v"})
		}
	}
	grow(&p.Spec)
	grow(&want.Spec)
	if !reflect.DeepEqual(p.Pod, want.Pod) {
		o.t.Error("appending to the pod's lists changed another of its lists")
	}
	return admission.Allowed("")
}
