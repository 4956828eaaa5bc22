package chart

import (
	_ "github.com/prometheus/prometheus/promql/parser"
	_ "github.com/warden-dev/warden/cmd/webhook/app"
	_ "helm.sh/helm/v3/pkg/action"
	_ "helm.sh/helm/v3/pkg/lint"
	_ "sigs.k8s.io/kustomize/api/krusty"
)
