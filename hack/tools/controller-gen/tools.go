//go:build tools

// Package tools pins controller-gen, which writes the CRDs in manifests/base/crds and the
// deepcopy functions of pkg/apis from their Go types and markers (`make generate`).
package tools

import _ "sigs.k8s.io/controller-tools/cmd/controller-gen"
