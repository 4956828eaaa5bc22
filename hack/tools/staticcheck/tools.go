//go:build tools

// Package tools pins staticcheck, the linter `make lint` runs (built by hack/tools/build.sh).
package tools

import _ "honnef.co/go/tools/cmd/staticcheck"
