// Package podfixture builds the pods the benchmarks and the load generator send to the webhook,
// so both measure the same thing, and injects pods through a handler for tests that need a pod
// as Warden leaves it.
package podfixture

import (
	"context"
	"encoding/json"
	"fmt"

	jsonpatch "github.com/evanphx/json-patch/v5"
	admissionv1 "k8s.io/api/admission/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"
)

// Pod returns a pod with the given number of containers, each with envVars env vars and a mount
// of each of the volumes volumes, plus requests/limits, probes and labels as a real workload has.
func Pod(sa string, containers, envVars, volumes int) *corev1.Pod {
	p := &corev1.Pod{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{
			GenerateName: "report-",
			Namespace:    "apps",
			Labels:       map[string]string{"app.kubernetes.io/name": "report", "app.kubernetes.io/version": "1.4.2", "pod-template-hash": "7c9f8d6b5"},
			Annotations:  map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
		},
		Spec: corev1.PodSpec{ServiceAccountName: sa, RestartPolicy: corev1.RestartPolicyAlways},
	}
	for v := 0; v < volumes; v++ {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{
			Name:         fmt.Sprintf("vol-%d", v),
			VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: fmt.Sprintf("cm-%d", v)}}},
		})
	}
	for c := 0; c < containers; c++ {
		ct := corev1.Container{
			Name:    fmt.Sprintf("c-%d", c),
			Image:   fmt.Sprintf("registry.example.com/team/app-%d:1.4.2", c),
			Command: []string{"python", "-m", "app"},
			Args:    []string{"--port", fmt.Sprint(9000 + c)},
			Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: int32(9000 + c)}},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("256Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("512Mi")},
			},
			ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/ready"}}},
		}
		for e := 0; e < envVars; e++ {
			ct.Env = append(ct.Env, corev1.EnvVar{Name: fmt.Sprintf("SETTING_%d", e), Value: fmt.Sprintf("value-%d", e)})
		}
		for v := 0; v < volumes; v++ {
			ct.VolumeMounts = append(ct.VolumeMounts, corev1.VolumeMount{Name: fmt.Sprintf("vol-%d", v), MountPath: fmt.Sprintf("/etc/app/%d", v), ReadOnly: true})
		}
		p.Spec.Containers = append(p.Spec.Containers, ct)
	}
	return p
}

// Realistic is the realistic pod: 3 containers, 10 env vars, 5 volumes.
func Realistic(sa string) *corev1.Pod { return Pod(sa, 3, 10, 5) }

// Large is a pod with 20 containers.
func Large(sa string) *corev1.Pod { return Pod(sa, 20, 10, 5) }

// Inject sends p to an admission handler (the mutating webhook's) as a pod creation in
// namespace and returns the pod as its patch leaves it, as the API server would store it.
func Inject(h admission.Handler, namespace string, p *corev1.Pod) (*corev1.Pod, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		Namespace: namespace, Operation: admissionv1.Create, Kind: metav1.GroupVersionKind{Version: "v1", Kind: "Pod"},
		Object: runtime.RawExtension{Raw: raw},
	}}
	resp := h.Handle(context.Background(), req)
	if !resp.Allowed {
		return nil, fmt.Errorf("podfixture: pod %s/%s refused: %v", namespace, p.Name, resp.Result)
	}
	if err := resp.Complete(req); err != nil {
		return nil, err
	}
	patch, err := jsonpatch.DecodePatch(resp.Patch)
	if err != nil {
		return nil, err
	}
	out, err := patch.Apply(raw)
	if err != nil {
		return nil, err
	}
	injected := &corev1.Pod{}
	return injected, json.Unmarshal(out, injected)
}

// Annotated returns p with the annotations vault-k8s's injector needs to inject its agent (one
// role, one secret), so a side-by-side benchmark sends both injectors the same pod and both
// really inject. Warden ignores them. It also has the service-account token volume the API
// server's ServiceAccount admission plugin adds before any webhook runs, which vault-k8s needs.
func Annotated(p *corev1.Pod) *corev1.Pod {
	p = p.DeepCopy()
	for k, v := range map[string]string{
		"vault.hashicorp.com/agent-inject":                "true",
		"vault.hashicorp.com/role":                        "report",
		"vault.hashicorp.com/agent-inject-secret-db.conf": "secret/data/report/db",
	} {
		p.Annotations[k] = v
	}
	expiry := int64(3607)
	p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "kube-api-access-7x2kq", VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &expiry}},
			{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}, Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
		}},
	}})
	for i := range p.Spec.Containers {
		c := &p.Spec.Containers[i]
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "kube-api-access-7x2kq", MountPath: "/var/run/secrets/kubernetes.io/serviceaccount", ReadOnly: true})
	}
	return p
}

// Review is the AdmissionReview v1 body the API server sends for op on p in p's namespace,
// with every field the API server fills (user, request kind and resource, options), so
// decoders are measured on what they really get. old is the stored pod on an update (nil on a
// creation).
func Review(uid string, op admissionv1.Operation, p, old []byte) ([]byte, error) {
	var meta struct {
		Metadata metav1.ObjectMeta `json:"metadata"`
	}
	if err := json.Unmarshal(p, &meta); err != nil {
		return nil, err
	}
	pods := metav1.GroupVersionResource{Version: "v1", Resource: "pods"}
	kind := metav1.GroupVersionKind{Version: "v1", Kind: "Pod"}
	options := `{"apiVersion":"meta.k8s.io/v1","kind":"CreateOptions"}`
	if op == admissionv1.Update {
		options = `{"apiVersion":"meta.k8s.io/v1","kind":"UpdateOptions"}`
	}
	dryRun := false
	return json.Marshal(admissionv1.AdmissionReview{
		TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"},
		Request: &admissionv1.AdmissionRequest{
			UID: types.UID(uid), Kind: kind, Resource: pods, RequestKind: &kind, RequestResource: &pods,
			Name: meta.Metadata.Name, Namespace: meta.Metadata.Namespace, Operation: op,
			UserInfo: authenticationv1.UserInfo{
				Username: "system:serviceaccount:kube-system:replicaset-controller",
				UID:      "5b1a2c3d-0000-4000-8000-000000000001",
				Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"},
			},
			Object: runtime.RawExtension{Raw: p}, OldObject: runtime.RawExtension{Raw: old},
			DryRun: &dryRun, Options: runtime.RawExtension{Raw: []byte(options)},
		},
	})
}
