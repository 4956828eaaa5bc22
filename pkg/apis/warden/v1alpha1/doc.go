// Package v1alpha1 is Warden's policy as Kubernetes objects (group warden.dev): who may run in
// opted-in namespaces (Owner), which datasets exist and who may read them (Dataset, managed by
// the people who own each dataset in their own namespace), named sets of users (Group), and
// which GCP service account each org maps to (Org). The rules are those of the policy file
// (docs/policy.md); docs/policy-objects.md documents the objects, who may change them and how
// they combine with the file.
//
// +kubebuilder:object:generate=true
// +groupName=warden.dev
package v1alpha1
