package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ReasonUnknownOrg: the Space names an org that is not in force.
const ReasonUnknownOrg = "UnknownOrg"

// OrgStorage is an org's Cloud Storage roles and where its loading zone's commits go. Its spaces
// are Space objects.
type OrgStorage struct {
	// Access lists who may reach the org's spaces at all (a role in a space is needed on top,
	// except to read internal spaces).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=10000
	Access []Member `json:"access,omitempty"`
	// RoleGrants here hold in every space of the org, and imply access to the org.
	RoleGrants `json:",inline"`
	// Topic is the Pub/Sub topic id (in the GCP project) the loading zone's commits are
	// published to.
	// +optional
	// +kubebuilder:validation:Pattern=`^[A-Za-z][A-Za-z0-9._~+%-]{2,254}$`
	Topic string `json:"topic,omitempty"`
}

// RoleGrants lists who holds each storage role: users list and read, suppliers also upload (and
// delete in the loading zone), trustees also delete.
type RoleGrants struct {
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=10000
	Users []Member `json:"users,omitempty"`
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=10000
	Suppliers []Member `json:"suppliers,omitempty"`
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=10000
	Trustees []Member `json:"trustees,omitempty"`
}

// Visibility of a space: public spaces can be read with a public role on one side, internal ones
// by anyone with access to the org, private ones with a role.
// +kubebuilder:validation:Enum=public;internal;private
type Visibility string

// Space is one bucket and object prefix of an org that pods can get short-lived credentials
// for. Its name is the org's name and the space's joined by a dot (ORG.SPACE).
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=warden
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Org",type=string,JSONPath=`.spec.org`
// +kubebuilder:printcolumn:name="Bucket",type=string,JSONPath=`.spec.bucket`
// +kubebuilder:printcolumn:name="Prefix",type=string,JSONPath=`.spec.prefix`
// +kubebuilder:printcolumn:name="Visibility",type=string,JSONPath=`.spec.visibility`
// +kubebuilder:printcolumn:name="Loading Zone",type=boolean,JSONPath=`.spec.loadingZone`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="self.metadata.name.startsWith(self.spec.org + '.') && self.metadata.name.substring(size(self.spec.org) + 1).matches('^[a-z0-9][a-z0-9-]{0,62}$')",message="a Space is named ORG.SPACE: its org, a dot, and at most 63 lower-case letters, digits and '-'"
type Space struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec SpaceSpec `json:"spec"`
	// +optional
	Status Status `json:"status,omitempty"`
}

// SpaceSpec is where a space's objects are and who may do what with them.
type SpaceSpec struct {
	// Org is the org the space belongs to; its GCP service account reaches the bucket.
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9-]{0,62}$`
	Org string `json:"org"`
	// Bucket is the Cloud Storage bucket.
	// +kubebuilder:validation:Pattern=`^[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]$`
	Bucket string `json:"bucket"`
	// Prefix is the space's object prefix in the bucket, ending in '/' (empty: the whole
	// bucket). No two spaces may overlap.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:Pattern=`^([A-Za-z0-9._=-]+/)*$`
	Prefix string `json:"prefix,omitempty"`
	// Visibility defaults to private.
	// +optional
	Visibility Visibility `json:"visibility,omitempty"`
	// LoadingZone marks the org's one space where suppliers upload for processing (they may
	// delete there too) and commit.
	// +optional
	LoadingZone bool `json:"loadingZone,omitempty"`
	RoleGrants  `json:",inline"`
}

// +kubebuilder:object:root=true

// SpaceList is a list of Spaces.
type SpaceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Space `json:"items"`
}

// StoragePolicy holds cluster-wide storage roles: admins, who bypass role checks, and the public
// roles. Every accepted StoragePolicy adds its members (by convention there is one, "default").
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster,categories=warden
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Admins",type=string,JSONPath=`.spec.admins`
// +kubebuilder:printcolumn:name="Accepted",type=string,JSONPath=`.status.conditions[?(@.type=="Accepted")].status`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type StoragePolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec StoragePolicySpec `json:"spec"`
	// +optional
	Status Status `json:"status,omitempty"`
}

// StoragePolicySpec lists the holders of the cluster-wide storage roles.
type StoragePolicySpec struct {
	// Admins pass every storage role check (spaces must still exist).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=1000
	Admins []Member `json:"admins,omitempty"`
	// AllPublic lists who holds the public roles, which reach public spaces only.
	// +optional
	AllPublic AllPublic `json:"allPublic,omitempty"`
}

// AllPublic: Orgs stands in for access to any org, Spaces for the user role in any space; for
// public spaces, and never both at once.
type AllPublic struct {
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=10000
	Orgs []Member `json:"orgs,omitempty"`
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=10000
	Spaces []Member `json:"spaces,omitempty"`
}

// +kubebuilder:object:root=true

// StoragePolicyList is a list of StoragePolicies.
type StoragePolicyList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []StoragePolicy `json:"items"`
}
