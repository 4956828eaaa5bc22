package review

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// reference is the response review as encoding/json writes it.
func reference(t testing.TB, tm metav1.TypeMeta, r *admissionv1.AdmissionResponse) []byte {
	var b bytes.Buffer
	require.NoError(t, json.NewEncoder(&b).Encode(admissionv1.AdmissionReview{TypeMeta: tm, Response: r}))
	return b.Bytes()
}

const hostile = "a\"b\\c</script>&\u2028\u2029\x00\x1f\x7f é \xff\xfe 🙂 \t\n"

func TestEncodeReview(t *testing.T) {
	v1 := metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}
	jsonPatch := admissionv1.PatchTypeJSONPatch
	for _, tc := range []struct {
		name string
		tm   metav1.TypeMeta
		r    admissionv1.AdmissionResponse
	}{
		{"allowed", v1, admissionv1.AdmissionResponse{UID: "u-1", Allowed: true, Result: &metav1.Status{Code: 200}}},
		{"no status", v1, admissionv1.AdmissionResponse{UID: "u-1", Allowed: true}},
		{"empty type meta", metav1.TypeMeta{}, admissionv1.AdmissionResponse{UID: "u"}},
		{"kind only", metav1.TypeMeta{Kind: "AdmissionReview"}, admissionv1.AdmissionResponse{UID: "u"}},
		{"api version only", metav1.TypeMeta{APIVersion: "v"}, admissionv1.AdmissionResponse{UID: "u"}},
		{"denied", v1, admissionv1.AdmissionResponse{UID: "u-2", Result: &metav1.Status{Code: 403, Reason: metav1.StatusReasonForbidden, Message: "forged-injection: no"}}},
		{"hostile strings", metav1.TypeMeta{APIVersion: hostile, Kind: hostile}, admissionv1.AdmissionResponse{UID: types.UID(hostile), Result: &metav1.Status{Status: hostile, Message: hostile, Reason: hostile, Code: -1}, PatchType: (*admissionv1.PatchType)(ptr.To(hostile))}},
		{"patched", v1, admissionv1.AdmissionResponse{UID: "u-3", Allowed: true, Result: &metav1.Status{Code: 200}, Patch: []byte(`[{"op":"add","path":"/a","value":"<&>` + hostile + `"}]`), PatchType: &jsonPatch}},
		{"patch of every length", v1, admissionv1.AdmissionResponse{Patch: []byte{0xff}, PatchType: &jsonPatch}},
		{"empty patch", v1, admissionv1.AdmissionResponse{Patch: []byte{}}},
		{"warnings", v1, admissionv1.AdmissionResponse{UID: "u", Warnings: []string{hostile}}},
		{"empty warnings", v1, admissionv1.AdmissionResponse{UID: "u", Warnings: []string{}, AuditAnnotations: map[string]string{}}},
		{"audit annotations", v1, admissionv1.AdmissionResponse{UID: "u", AuditAnnotations: map[string]string{"a": hostile}}},
		{"status details", v1, admissionv1.AdmissionResponse{UID: "u", Result: &metav1.Status{Details: &metav1.StatusDetails{Name: "x"}}}},
		{"status list meta", v1, admissionv1.AdmissionResponse{UID: "u", Result: &metav1.Status{ListMeta: metav1.ListMeta{RemainingItemCount: ptr.To[int64](0)}}}},
		{"status type meta", v1, admissionv1.AdmissionResponse{UID: "u", Result: &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := encodeReview([]byte("kept"), tc.tm, &tc.r)
			require.NoError(t, err)
			require.Equal(t, "kept"+string(reference(t, tc.tm, &tc.r)), string(got))
		})
	}
}

// FuzzEncodeReview: the response review is what encoding/json writes, whatever the strings.
func FuzzEncodeReview(f *testing.F) {
	f.Add("u-1", "admission.k8s.io/v1", hostile, "Forbidden", []byte(`[{"op":"add"}]`), int32(403), true)
	f.Add("", "", "", "", []byte(nil), int32(0), false)
	f.Fuzz(func(t *testing.T, uid, apiVersion, message, reason string, patch []byte, code int32, allowed bool) {
		tm := metav1.TypeMeta{APIVersion: apiVersion, Kind: reason}
		r := admissionv1.AdmissionResponse{UID: types.UID(uid), Allowed: allowed, Patch: patch}
		if code != 0 || message != "" {
			r.Result = &metav1.Status{Code: code, Message: message, Reason: metav1.StatusReason(reason), Status: uid}
		}
		if len(patch) > 0 {
			r.PatchType = (*admissionv1.PatchType)(&message)
		}
		got, err := encodeReview(nil, tm, &r)
		require.NoError(t, err)
		require.Equal(t, string(reference(t, tm, &r)), string(got))
	})
}
