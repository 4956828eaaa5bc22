package app

import (
	"testing"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
)

// A cluster without the PodCertificateRequest API is told so at start, with what to do.
func TestServesPodCertificates(t *testing.T) {
	kube := fake.NewClientset()
	d := kube.Discovery().(*fakediscovery.FakeDiscovery)
	err := servesPodCertificates(d)
	if assert.Error(t, err) {
		assert.Contains(t, err.Error(), "Kubernetes 1.37")
		assert.Contains(t, err.Error(), "--sidecar-identity=token")
	}
	d.Resources = []*metav1.APIResourceList{{GroupVersion: "certificates.k8s.io/v1", APIResources: []metav1.APIResource{{Name: "certificatesigningrequests"}}}}
	assert.Error(t, servesPodCertificates(d), "the group without the resource")
	d.Resources[0].APIResources = append(d.Resources[0].APIResources, metav1.APIResource{Name: "podcertificaterequests"})
	assert.NoError(t, servesPodCertificates(d))
}
