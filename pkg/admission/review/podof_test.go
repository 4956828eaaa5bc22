package review

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// podOfHandler records what PodOf gives for the request's objects, twice each (the second
// time from the bytes again), and for a copy of the object's bytes. It keeps deep copies, as a
// handler must that keeps a pod past its return (the lists are the review's: see slabs), and
// which pod it was given.
type podOfHandler struct {
	got   map[string]Pod
	given map[string]*corev1.Pod
}

func (h podOfHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	record := func(name string, p Pod) {
		h.given[name] = p.Pod
		p.Pod = p.Pod.DeepCopy()
		h.got[name] = p
	}
	for name, raw := range map[string][]byte{"object": req.Object.Raw, "oldObject": req.OldObject.Raw} {
		for _, n := range []string{"1", "2"} {
			if p, err := PodOf(ctx, raw); err == nil {
				record(name+n, p)
			}
		}
		if p, err := PodOf(ctx, append([]byte(nil), raw...)); err == nil {
			record(name+"-copy", p)
		}
	}
	return admission.Allowed("")
}

func TestPodOf(t *testing.T) {
	const pod = `{"metadata":{"name":"p"},"spec":{"containers":[{"name":"warden-sidecar","image":"i"}],"volumes":[{"name":"warden-x","emptyDir":{}}]}}`
	for _, tc := range []struct {
		name, resource, sub, object, old string
		// withEnvelope: read during the envelope's scan; decoded: what PodOf gives at all.
		withEnvelope []bool
		decoded      []string
	}{
		{"pod creation", "pods", "", pod, "null", []bool{true, false}, []string{"object1", "object2", "object-copy"}},
		{"pod update", "pods", "", pod, pod, []bool{true, true}, []string{"object1", "object2", "object-copy", "oldObject1", "oldObject2", "oldObject-copy"}},
		{"a pod's subresource", "pods", "exec", `{"container":"c"}`, "null", []bool{false, false}, []string{"object1", "object2", "object-copy"}},
		{"not pods", "configmaps", "", pod, "null", []bool{false, false}, []string{"object1", "object2", "object-copy"}},
		{"a pod ReadPod refuses", "pods", "", `{"spec":{"containers":5}}`, "null", []bool{false, false}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.NewReplacer("RES", tc.resource, "SUB", tc.sub, "OBJ", tc.object, "OLD", tc.old).Replace(
				`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u","resource":{"group":"","version":"v1","resource":"RES"},"subResource":"SUB","object":OBJ,"oldObject":OLD}}`)
			var review admissionv1.AdmissionReview
			pods, err := decodeReviewPods([]byte(body), &review)
			require.NoError(t, err)
			for i, want := range tc.withEnvelope {
				assert.Equal(t, want, pods.pod[i].pod.Load() != nil, "object %d", i)
			}
			h := podOfHandler{got: map[string]Pod{}, given: map[string]*corev1.Pod{}}
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			w := httptest.NewRecorder()
			(&Handler{Handler: h}).ServeHTTP(w, r)
			require.Equal(t, http.StatusOK, w.Code, w.Body.String())
			var keys []string
			for k := range h.got {
				keys = append(keys, k)
			}
			assert.ElementsMatch(t, tc.decoded, keys)
			for k, p := range h.got {
				raw := tc.object
				if strings.HasPrefix(k, "old") {
					raw = tc.old
				}
				want, err := ReadPod([]byte(raw))
				require.NoError(t, err)
				assert.Equal(t, want, p, k)
			}
			if len(tc.decoded) > 0 {
				assert.NotSame(t, h.given["object1"], h.given["object2"], "a pod read with the envelope is handed out once")
			}
		})
	}
}
