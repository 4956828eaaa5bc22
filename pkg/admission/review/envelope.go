package review

import (
	"fmt"

	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	sigsjson "sigs.k8s.io/json"
)

// decodeReviewPods reads an AdmissionReview in the same single pass as the pod (see scanner):
// the envelope's fields are decoded, the objects kept as the bytes they are (validated), so
// each handler decodes only what it judges, and the pods are read during that scan (see
// podof.go). The user info and any field this version does not know go through the reference
// decoder or are skipped, as encoding/json would.
func decodeReviewPods(body []byte, review *admissionv1.AdmissionReview) (*decodedPods, error) {
	s := scanner{b: body, pods: &decodedPods{slabs: getSlabs()}}
	s.slabs = s.pods.slabs
	var keys seen
	_, err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "apiVersion":
			err = keys.read(0, func() error { return s.str(&review.APIVersion) })
		case "kind":
			err = keys.read(1, func() error { return s.str(&review.Kind) })
		case "request":
			err = keys.read(2, func() error { return s.request(&review.Request) })
		default:
			err = s.skip()
		}
		return keyErr(key, err)
	})
	if err == nil {
		err = s.end()
	}
	return s.pods, err
}

func (s *scanner) request(p **admissionv1.AdmissionRequest) error {
	if s.null() {
		*p = nil
		return nil
	}
	r := &admissionv1.AdmissionRequest{}
	*p = r
	var keys seen
	_, err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "uid":
			err = keys.read(0, func() error { return s.str((*string)(&r.UID)) })
		case "kind":
			err = keys.read(1, func() error { return s.gvk(&r.Kind) })
		case "resource":
			err = keys.read(2, func() error { return s.gvr(&r.Resource) })
		case "subResource":
			err = keys.read(3, func() error { return s.str(&r.SubResource) })
		case "requestKind":
			err = keys.read(4, func() error { r.RequestKind = &metav1.GroupVersionKind{}; return s.gvkPtr(&r.RequestKind) })
		case "requestResource":
			err = keys.read(5, func() error { r.RequestResource = &metav1.GroupVersionResource{}; return s.gvrPtr(&r.RequestResource) })
		case "requestSubResource":
			err = keys.read(6, func() error { return s.str(&r.RequestSubResource) })
		case "name":
			err = keys.read(7, func() error { return s.str(&r.Name) })
		case "namespace":
			err = keys.read(8, func() error { return s.str(&r.Namespace) })
		case "operation":
			err = keys.read(9, func() error { return s.str((*string)(&r.Operation)) })
		case "userInfo":
			err = keys.read(10, func() error { return s.userInfo(&r.UserInfo) })
		case "object":
			err = keys.read(11, func() error { var err error; r.Object.Raw, err = s.podValue(isPods(r), &s.pods.pod[0]); return err })
		case "oldObject":
			err = keys.read(12, func() error { var err error; r.OldObject.Raw, err = s.podValue(isPods(r), &s.pods.pod[1]); return err })
		case "dryRun":
			err = keys.read(13, func() error { return s.boolPtr(&r.DryRun) })
		case "options":
			err = keys.read(14, func() error { var err error; r.Options.Raw, err = s.raw(); return err })
		default:
			err = s.skip()
		}
		return keyErr(key, err)
	})
	return err
}

// userInfo reads who asks, in full: the fields of authenticationv1.UserInfo as the reference
// decoder has them (null leaves a field as it is, a list or map null is nil).
func (s *scanner) userInfo(u *authenticationv1.UserInfo) error {
	var keys seen
	_, err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "username":
			err = keys.read(0, func() error { return s.str(&u.Username) })
		case "uid":
			err = keys.read(1, func() error { return s.str(&u.UID) })
		case "groups":
			err = keys.read(2, func() error { return s.strings(&u.Groups) })
		case "extra":
			err = keys.read(3, func() error { return s.extra(&u.Extra) })
		default:
			err = s.skip()
		}
		return keyErr(key, err)
	})
	return err
}

func (s *scanner) strings(p *[]string) error {
	return list(s, p, func(_ int, v *string) error { return s.str(v) })
}

func (s *scanner) extra(p *map[string]authenticationv1.ExtraValue) error {
	if s.null() {
		*p = nil
		return nil
	}
	m := map[string]authenticationv1.ExtraValue{}
	*p = m
	_, err := s.object(func(key []byte) error {
		k := s.keep(key)
		if _, dup := m[k]; dup {
			return keyErr(key, errDuplicate)
		}
		var v []string
		if err := s.strings(&v); err != nil {
			return keyErr(key, err)
		}
		m[k] = v
		return nil
	})
	return err
}

// isPods is whether the request read so far is about a pod itself (no subresource).
func isPods(r *admissionv1.AdmissionRequest) bool {
	return r.Resource.Group == "" && r.Resource.Resource == "pods" && r.SubResource == ""
}

func (s *scanner) gvkPtr(p **metav1.GroupVersionKind) error {
	if s.null() {
		*p = nil
		return nil
	}
	return s.gvk(*p)
}

func (s *scanner) gvrPtr(p **metav1.GroupVersionResource) error {
	if s.null() {
		*p = nil
		return nil
	}
	return s.gvr(*p)
}

func (s *scanner) gvk(k *metav1.GroupVersionKind) error {
	return s.triple(&k.Group, &k.Version, &k.Kind, "kind")
}

func (s *scanner) gvr(r *metav1.GroupVersionResource) error {
	return s.triple(&r.Group, &r.Version, &r.Resource, "resource")
}

// triple reads {"group","version",third}, the shape of both a kind and a resource.
func (s *scanner) triple(group, version, third *string, thirdKey string) error {
	var keys seen
	_, err := s.object(func(key []byte) error {
		var err error
		switch string(key) {
		case "group":
			err = keys.read(0, func() error { return s.str(group) })
		case "version":
			err = keys.read(1, func() error { return s.str(version) })
		case thirdKey:
			err = keys.read(2, func() error { return s.str(third) })
		default:
			err = s.skip()
		}
		return keyErr(key, err)
	})
	return err
}

// decodeReviewReference is the reference decoder decodeReview must agree with (tests, fuzzing).
func decodeReviewReference(body []byte, review *admissionv1.AdmissionReview) error {
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(body, review); err != nil {
		return fmt.Errorf("decoding admission review: %w", err)
	}
	return nil
}
