//go:build tools

// Package tools pins the kube-apiserver that the envtest suites run against.
package tools

import _ "k8s.io/kubernetes/cmd/kube-apiserver"
