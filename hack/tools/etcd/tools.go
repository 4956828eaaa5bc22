//go:build tools

// Package tools pins the etcd that the envtest suites run against.
package tools

import _ "go.etcd.io/etcd/server/v3"
