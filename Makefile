# Warden. `make test` and `make demo` work on a fresh machine with Go and the module proxy:
# the real kube-apiserver and etcd the tests need are built from source once and cached in
# ~/.cache/warden (override with WARDEN_CACHE).
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/warden-dev/warden/pkg/version.Version=$(VERSION)
FUZZTIME ?= 10s
ENVTEST_ASSETS = $(shell hack/tools/build.sh path-envtest)
VAULT_BIN = $(shell hack/tools/build.sh path-vault)
export GOFLAGS := -buildvcs=false

.PHONY: all build test lint unit e2e fuzz demo bench bench-sidecar bench-secrets bench-identity loadtest envtest vault images clean help

all: build

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/warden-webhook, bin/warden-sidecar and the bin/warden CLI
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/warden-webhook ./cmd/webhook
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/warden-sidecar ./cmd/sidecar
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/warden ./cmd/warden

envtest: ## build (once) the kube-apiserver and etcd the tests run against
	hack/tools/build.sh envtest

vault: ## build (once) the Vault server the tests run against
	hack/tools/build.sh vault

lint: ## gofmt and go vet
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...

test: envtest vault lint ## everything: unit, e2e against a real kube-apiserver and Vault, fuzz targets briefly (-race)
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) WARDEN_VAULT=$(VAULT_BIN) $(GO) test -race -count=1 ./...
	$(MAKE) --no-print-directory fuzz

unit: ## unit tests only (no control plane)
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /test/e2e)

e2e: envtest vault ## the envtest + Vault suite only
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) WARDEN_VAULT=$(VAULT_BIN) $(GO) test -race -count=1 -v ./test/e2e/

fuzz: ## run every fuzz target for FUZZTIME (default 10s)
	$(GO) test ./pkg/mutate -run '^$$' -fuzz '^FuzzMutate$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/policy -run '^$$' -fuzz '^FuzzPolicy$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/stage -run '^$$' -fuzz '^FuzzStagePath$$' -fuzztime $(FUZZTIME)

demo: envtest vault build ## local control plane, webhook, sidecar and Vault dev server on loopback
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) WARDEN_VAULT=$(VAULT_BIN) $(GO) run ./hack/demo

bench: ## handler micro-benchmarks (ns/op, allocs/op)
	$(GO) test ./pkg/mutate -run '^$$' -bench . -benchmem -count 5

bench-sidecar: build ## 1 GiB stage vs cp, 4 KiB stages over HTTP at RATE (200), start-up and idle RSS
	$(GO) run ./hack/sidecarbench -bin bin/warden-sidecar -rate $${RATE:-200} -duration $${DURATION:-20s}

bench-secrets: envtest vault ## cached and uncached secret reads against a real Vault
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) WARDEN_VAULT=$(VAULT_BIN) $(GO) test ./test/e2e -run '^$$' -bench Secrets -benchtime 3000x

bench-identity: envtest vault ## 1000 workload-identity binds against the fake IAM and a real API server
	KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) WARDEN_VAULT=$(VAULT_BIN) $(GO) test ./test/e2e -run '^$$' -bench IdentityBind -benchtime 1000x

loadtest: ## /mutate-v1-pod over TLS at a fixed rate (RATE=500 DURATION=30s)
	$(GO) run ./hack/loadtest -rate $${RATE:-500} -duration $${DURATION:-30s}

images: ## container images (needs a Docker engine)
	docker build -f Dockerfile.webhook --build-arg VERSION=$(VERSION) -t ghcr.io/warden-dev/warden-webhook:$(VERSION) .
	docker build -f Dockerfile.sidecar --build-arg VERSION=$(VERSION) -t ghcr.io/warden-dev/warden-sidecar:$(VERSION) .

clean:
	rm -rf bin
