package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Environment is the environment an owner runs in and a dataset may be restricted to.
// +kubebuilder:validation:Enum=dev;test;prod
type Environment string

// Member names a reader or org member: user:NAME, group:NAME or serviceAccount:NAMESPACE/NAME.
// +kubebuilder:validation:Pattern=`^((user|group):[A-Za-z0-9][A-Za-z0-9._@+-]{0,254}|serviceAccount:[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?)$`
// +kubebuilder:validation:MaxLength=320
type Member string

// SnapshotDir is a directory of the dataset share, relative and clean (no '.', '..' or empty
// parts): for a Dataset, relative to its namespace's snapshot root.
// +kubebuilder:validation:MinLength=1
// +kubebuilder:validation:MaxLength=1024
// +kubebuilder:validation:Pattern=`^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$`
// +kubebuilder:validation:XValidation:rule="self.split('/').all(p, p != '.' && p != '..')",message="snapshot directories have no '.' or '..' parts"
type SnapshotDir string

// Status is what Warden reports about an object: condition Accepted is True when the object is
// in force, False (with the reason) when Warden ignores it. An object that is not accepted
// never grants anything.
type Status struct {
	// ObservedGeneration is the generation the conditions describe.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Accepted.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Condition type and reasons.
const (
	ConditionAccepted = "Accepted"
	// ReasonAccepted: the object is in force.
	ReasonAccepted = "Accepted"
	// ReasonInvalid: the object breaks a rule the schema cannot express; the message says which.
	ReasonInvalid = "Invalid"
	// ReasonConflict: another definition of the same name takes precedence (the policy file, or
	// an older Dataset of the same name in another namespace).
	ReasonConflict = "Conflict"
	// ReasonNoSnapshotRoot: the Dataset's namespace has no warden.dev/snapshot-root annotation.
	ReasonNoSnapshotRoot = "NoSnapshotRoot"
	// ReasonIDNotClaimed: the Dataset's namespace has a warden.dev/dataset-ids annotation that
	// does not list the Dataset's id.
	ReasonIDNotClaimed = "IDNotClaimed"
)

// Owner allows one Kubernetes service account to run pods in namespaces opted in to Warden,
// in one environment. Its name is the service account's namespace and name joined by a dot.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=warden
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Service Account",type=string,JSONPath=`.spec.serviceAccount`
// +kubebuilder:printcolumn:name="Environment",type=string,JSONPath=`.spec.environment`
// +kubebuilder:printcolumn:name="User",type=string,JSONPath=`.spec.user`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name == self.spec.serviceAccount.replace('/', '.')",message="an Owner is named after its service account: NAMESPACE.NAME"
type Owner struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec OwnerSpec `json:"spec"`
	// +optional
	Status Status `json:"status,omitempty"`
}

// OwnerSpec is one allowed service account.
type OwnerSpec struct {
	// ServiceAccount is NAMESPACE/NAME.
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?/[a-z0-9]([-a-z0-9.]*[a-z0-9])?$`
	// +kubebuilder:validation:MaxLength=317
	ServiceAccount string `json:"serviceAccount"`
	// Environment the owner's pods run in; datasets restricted to other environments are never
	// theirs.
	Environment Environment `json:"environment"`
	// User is the person who answers for the service account (audit lines).
	// +optional
	// +kubebuilder:validation:Pattern=`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,254}$`
	User string `json:"user,omitempty"`
}

// +kubebuilder:object:root=true

// OwnerList is a list of Owners.
type OwnerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Owner `json:"items"`
}

// Dataset is a dataset pods may stage files from: its snapshot directories and who may read
// it. The name is the dataset's id, unique in the cluster (an older acceptable Dataset of the
// same name in another namespace wins). Dataset owners manage Datasets in their own namespace;
// the namespace's annotations, set by an admin, bound where their snapshots may be
// (warden.dev/snapshot-root) and which ids they may take (warden.dev/dataset-ids).
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Namespaced,categories=warden,shortName=wds
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Snapshot",type=string,JSONPath=`.spec.snapshot`
// +kubebuilder:printcolumn:name="Environments",type=string,JSONPath=`.spec.environments`
// +kubebuilder:printcolumn:name="Readers",type=string,JSONPath=`.spec.readers`,priority=1
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 128",message="a dataset id has at most 128 characters"
type Dataset struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec DatasetSpec `json:"spec"`
	// +optional
	Status Status `json:"status,omitempty"`
}

// DatasetSpec is where a dataset lives and who may read it.
type DatasetSpec struct {
	// Snapshot is the head snapshot's directory, under the namespace's snapshot root.
	Snapshot SnapshotDir `json:"snapshot"`
	// Snapshots names older snapshots that may be staged from too (name -> directory).
	// +optional
	// +kubebuilder:validation:MaxProperties=256
	Snapshots map[string]SnapshotDir `json:"snapshots,omitempty"`
	// Environments restricts the dataset to owners of these environments (none: any).
	// +optional
	// +listType=set
	Environments []Environment `json:"environments,omitempty"`
	// Readers may read the dataset: user:NAME, group:NAME or serviceAccount:NAMESPACE/NAME. A
	// pod's owner and the caller it acts for must both be readers.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1000
	Readers []Member `json:"readers,omitempty"`
}

// +kubebuilder:object:root=true

// DatasetList is a list of Datasets.
type DatasetList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Dataset `json:"items"`
}

// Group is a named set of users that readers and org members can name as group:NAME.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=warden
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Users",type=string,JSONPath=`.spec.users`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Group struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec GroupSpec `json:"spec"`
	// +optional
	Status Status `json:"status,omitempty"`
}

// GroupSpec lists a group's users.
type GroupSpec struct {
	// Users in the group.
	// +listType=set
	// +kubebuilder:validation:MaxItems=10000
	// +kubebuilder:validation:items:Pattern=`^[A-Za-z0-9][A-Za-z0-9._@+-]{0,254}$`
	Users []string `json:"users"`
}

// +kubebuilder:object:root=true

// GroupList is a list of Groups.
type GroupList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Group `json:"items"`
}

// Org maps a set of owners to a GCP service account they may act as (GKE workload identity).
// The name is the org's name.
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=warden
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="GCP Service Account",type=string,JSONPath=`.spec.gcpServiceAccount`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z0-9][a-z0-9-]{0,62}$')",message="an org name is at most 63 lower-case letters, digits and '-'"
type Org struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec OrgSpec `json:"spec"`
	// +optional
	Status Status `json:"status,omitempty"`
}

// OrgSpec is an org's GCP service account and its members.
type OrgSpec struct {
	// GCPServiceAccount is the e-mail of the GCP service account members act as.
	// +kubebuilder:validation:Pattern=`^[a-z0-9][-a-z0-9.]*@[a-z0-9][-a-z0-9.]*\.gserviceaccount\.com$`
	GCPServiceAccount string `json:"gcpServiceAccount"`
	// Members may bind the org's account: serviceAccount:NAMESPACE/NAME (or groups and users,
	// which never match a pod's owner but keep the file's syntax).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=10000
	Members []Member `json:"members,omitempty"`
	// Storage is the org's Cloud Storage roles and commit topic (its spaces are Space objects).
	// +optional
	Storage *OrgStorage `json:"storage,omitempty"`
}

// +kubebuilder:object:root=true

// OrgList is a list of Orgs.
type OrgList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Org `json:"items"`
}
