//go:build tools

// Package tools pins the kubelet that the real-node suite (test/node) runs pods on.
package tools

import _ "k8s.io/kubernetes/cmd/kubelet"
