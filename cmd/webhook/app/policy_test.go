package app

import (
	"testing"

	"github.com/stretchr/testify/assert"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	fakediscovery "k8s.io/client-go/discovery/fake"
	"k8s.io/client-go/kubernetes/fake"
)

// The policy objects on and Warden's CRDs missing: the webhook says which and how to install
// them, instead of a REST-mapping error.
func TestServesPolicyObjects(t *testing.T) {
	d := fake.NewClientset().Discovery().(*fakediscovery.FakeDiscovery)
	err := servesPolicyObjects(d)
	if assert.Error(t, err) {
		for _, want := range []string{"owners.warden.dev", "storagepolicies.warden.dev", "kubectl apply -f manifests/base/crds/", "--policy-objects=false"} {
			assert.Contains(t, err.Error(), want)
		}
	}
	d.Resources = []*metav1.APIResourceList{{GroupVersion: "warden.dev/v1alpha1", APIResources: []metav1.APIResource{
		{Name: "owners"}, {Name: "datasets"}, {Name: "groups"}, {Name: "orgs"}}}}
	err = servesPolicyObjects(d)
	if assert.Error(t, err, "an older chart's CRDs, without spaces") {
		assert.Contains(t, err.Error(), "spaces.warden.dev, storagepolicies.warden.dev")
		assert.NotContains(t, err.Error(), "owners.warden.dev")
	}
	d.Resources[0].APIResources = append(d.Resources[0].APIResources, metav1.APIResource{Name: "spaces"}, metav1.APIResource{Name: "storagepolicies"})
	assert.NoError(t, servesPolicyObjects(d))
}
