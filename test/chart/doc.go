// Package chart checks the Helm chart (charts/warden) against the kustomize base and the
// monitoring rules (manifests/monitoring) against what Warden really exports. It is a module of
// its own so Helm's, kustomize's and Prometheus's dependencies stay out of Warden's.
package chart
