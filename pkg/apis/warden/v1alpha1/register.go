package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of Warden's objects.
var GroupVersion = schema.GroupVersion{Group: "warden.dev", Version: "v1alpha1"}

// AddToScheme registers the types with a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&Owner{}, &OwnerList{},
		&Dataset{}, &DatasetList{},
		&Group{}, &GroupList{},
		&Org{}, &OrgList{},
		&Space{}, &SpaceList{},
		&StoragePolicy{}, &StoragePolicyList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
