# Warden. `make test` and `make demo` work on a fresh machine with Go and the module proxy:
# the real kube-apiserver, etcd, Vault and kubelet the tests need are built from source once and
# cached in ~/.cache/warden (override with WARDEN_CACHE). The real-node suite (`make node`, part
# of `make test`) also needs root and Debian's containerd, runc, containernetworking-plugins and
# iptables (.ci/run installs them).
SHELL := /bin/bash
GO ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X github.com/warden-dev/warden/pkg/version.Version=$(VERSION)
FUZZTIME ?= 10s
ENVTEST_ASSETS = $(shell hack/tools/build.sh path-envtest)
VAULT_BIN = $(shell hack/tools/build.sh path-vault)
KUBELET_BIN = $(shell hack/tools/build.sh path-kubelet)
STATICCHECK = $(shell hack/tools/build.sh path-staticcheck)
# The servers every suite against a control plane needs, once: the envtest apiserver and etcd,
# and Vault; NODE_ENV adds the kubelet of the real-node suite.
TEST_ENV = KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) WARDEN_VAULT=$(VAULT_BIN)
NODE_ENV = $(TEST_ENV) WARDEN_KUBELET=$(KUBELET_BIN)
IMAGE_REPO ?= ghcr.io/warden-dev
WEBHOOK_IMAGE ?= $(IMAGE_REPO)/warden-webhook:$(VERSION)
SIDECAR_IMAGE ?= $(IMAGE_REPO)/warden-sidecar:$(VERSION)
export GOFLAGS := -buildvcs=false

.PHONY: generate all build test lint unit e2e python node fuzz demo bench bench-compare bench-sidecar bench-stage bench-secrets bench-identity bench-node bench-broker bench-storage bench-policy chart-test chart-crds chart-monitoring loadtest loadtest-vault loadtest-compare envtest vault kubelet staticcheck images images-docker clean help

all: build

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

build: ## build bin/warden-webhook, bin/warden-sidecar and the bin/warden CLI
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/warden-webhook ./cmd/webhook
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/warden-sidecar ./cmd/sidecar
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o bin/warden ./cmd/warden

envtest: ## build (once) the kube-apiserver and etcd the tests run against
	hack/tools/build.sh envtest

vault: ## build (once) the Vault server the tests run against
	hack/tools/build.sh vault

kubelet: ## build (once) the kubelet the real-node suite runs pods on
	hack/tools/build.sh kubelet

lint: staticcheck ## gofmt, go vet, staticcheck (pinned in hack/tools/staticcheck), no function over 80 lines outside tests and hack/, no tracked binaries or files over 1 MiB
	@hack/lint/no-build-outputs.sh
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) vet -tags node ./test/node/
	$(STATICCHECK) ./...
	$(STATICCHECK) -tags node ./test/node/
	$(GO) run ./hack/lint/funclen -max 80 .

staticcheck: ## build (once) the staticcheck make lint runs
	@hack/tools/build.sh staticcheck >/dev/null

test: envtest vault kubelet lint ## everything: unit, e2e against a real kube-apiserver and Vault, real pods on a kubelet node, fuzz targets briefly (-race)
	$(TEST_ENV) $(GO) test -race -count=1 ./...
	$(MAKE) --no-print-directory python
	$(MAKE) --no-print-directory chart-test
	$(MAKE) --no-print-directory node
	$(MAKE) --no-print-directory fuzz

unit: ## unit tests only (no control plane)
	$(GO) test -race -count=1 $$($(GO) list ./... | grep -v /test/e2e)

e2e: envtest vault ## the envtest + Vault suite only
	$(TEST_ENV) $(GO) test -race -count=1 -v ./test/e2e/

# The Python client (clients/python): unittest with the machine's python3 (standard library only).
# Unit tests first (tests/unit: a fake sidecar in-process, no Go), then the integration tests
# (tests/integration) against a real sidecar built here, in local mode, and the offline pip
# install; its broker-mode tests run inside `make e2e`.
PYTHON ?= python3
python: ## the Python client's unit tests, then its tests against a real sidecar (local mode), offline pip install included
	CGO_ENABLED=0 $(GO) build -o bin/python-test/warden-sidecar ./cmd/sidecar
	cd clients/python && $(PYTHON) -m unittest discover -s tests/unit -t .
	cd clients/python && WARDEN_SIDECAR_BIN=$(CURDIR)/bin/python-test/warden-sidecar $(PYTHON) -m unittest discover -s tests/integration -t .

# The node suite owns the machine's one node (a bridge, port 10250, a lock): it runs alone, after
# the packages above, never beside another node suite. NODE_FLAGS=-v shows each test.
node: envtest vault kubelet ## real pods on a kubelet + containerd node on this machine (root, Debian packages)
	$(NODE_ENV) $(GO) test -tags node -race -count=1 -timeout 20m $(NODE_FLAGS) ./test/node/

fuzz: ## run every fuzz target for FUZZTIME (default 10s)
	$(GO) test ./pkg/admission/mutate -run '^$$' -fuzz '^FuzzMutate$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/admission/review -run '^$$' -fuzz '^FuzzReadPod$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/admission/review -run '^$$' -fuzz '^FuzzDecodeReview$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/policy -run '^$$' -fuzz '^FuzzPolicy$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/policy -run '^$$' -fuzz '^FuzzValidObjectName$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/stage -run '^$$' -fuzz '^FuzzStagePath$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/guard -run '^$$' -fuzz '^FuzzIsCleanAbs$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/admission/review -run '^$$' -fuzz '^FuzzSpecial$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/charset -run '^$$' -fuzz '^FuzzShapes$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/policy -run '^$$' -fuzz '^FuzzNames$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/secrets -run '^$$' -fuzz '^FuzzKeyAndPathShapes$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/stage -run '^$$' -fuzz '^FuzzValidStagedName$$' -fuzztime $(FUZZTIME)
	$(GO) test ./pkg/clusterpolicy -run '^$$' -fuzz '^FuzzIDClaims$$' -fuzztime $(FUZZTIME)

demo: envtest vault kubelet build ## local control plane, webhook, sidecar and Vault dev server; a real injected pod on a kubelet node when the machine allows
	$(TEST_ENV) $(GO) run ./hack/demo

bench: ## admission micro-benchmarks (mutating and validating; ns/op, allocs/op), then bench-compare
	$(GO) test ./pkg/admission/... -run '^$$' -bench . -benchmem -count 5
	$(MAKE) --no-print-directory bench-compare

# Its own module (hack/bench/vaultk8s), so vault-k8s never enters Warden's go.mod.
bench-compare: ## Warden's webhooks against vault-k8s's injector in one run, same pods, HTTP handler to HTTP handler (x-vault: CPU ratio)
	cd hack/bench/vaultk8s && $(GO) test -run '^$$' -bench . -benchmem -count $${COUNT:-3}

bench-sidecar: build ## 1 GiB stage vs cp + fsync (paired runs, ROUNDS), 4 KiB stages over HTTP at RATE (200) for DURATION (20 s: 4,001 copies; SYNC_COPIES=true as a non-native sidecar), start-up, idle RSS and RSS after the run, on BENCH_DIR (~/.cache/warden/bench)
	$(GO) run ./hack/sidecarbench -bin bin/warden-sidecar -rate $${RATE:-200} -duration $${DURATION:-20s} -rounds $${ROUNDS:-5} -dir $${BENCH_DIR:-$$HOME/.cache/warden/bench} -sync-copies=$${SYNC_COPIES:-false}

bench-stage: ## pkg/stage's Stage (4 KiB, 64 MiB) in-process, for profiles: add ARGS='-cpuprofile cpu.out -memprofile mem.out'
	$(GO) test ./pkg/stage -run '^$$' -bench Stage -benchmem -count $${COUNT:-3} $${ARGS:-}

bench-secrets: envtest vault ## cached and uncached secret reads against a real Vault
	$(TEST_ENV) $(GO) test ./test/e2e -run '^$$' -bench Secrets -benchtime 3000x

bench-identity: envtest vault ## 1000 workload-identity binds against the fake IAM and a real API server
	$(TEST_ENV) $(GO) test ./test/e2e -run '^$$' -bench IdentityBind -benchtime 1000x

bench-node: envtest vault kubelet images ## pod start-up with vs without Warden (20 pods each), sidecar memory after 100 stages, image sizes
	$(NODE_ENV) $(GO) test -tags node -count=1 -timeout 30m ./test/node/ -run '^$$' -bench . -benchtime 1x

bench-broker: envtest vault ## one grant check through the broker by pod certificate vs projected token, kept-alive vs new connections (p50/p99)
	$(TEST_ENV) $(GO) test ./test/e2e -run '^$$' -bench BrokerCheck -benchtime 3000x

bench-storage: envtest vault ## storage credentials through a sidecar and the broker: cold (a mint each) and warm p50/p99 (STORAGE_SPACES=200)
	$(TEST_ENV) $(GO) test ./test/e2e -run '^$$' -bench StorageCredentials -benchtime 5000x

bench-policy: envtest vault ## the policy as objects at scale: 10,000 owners, 50,000 datasets (POLICY_OWNERS, POLICY_DATASETS)
	$(TEST_ENV) $(GO) test ./test/e2e -run '^$$' -bench PolicyScale -benchtime 1x -timeout 60m

# LOADTEST_FLAGS: e.g. -large (the 20-container pod), -webhooks mutate (the mutating call alone).
loadtest: ## pods over TLS at a fixed rate, each through /mutate-v1-pod then /validate-v1-pod as the API server calls them (RATE=500 DURATION=30s)
	$(GO) run ./hack/loadtest -rate $${RATE:-500} -duration $${DURATION:-30s} $(LOADTEST_FLAGS)

loadtest-vault: ## vault-k8s's injector under the same load as make loadtest -webhooks mutate (RATE, DURATION, LOADTEST_FLAGS)
	cd hack/bench/vaultk8s && $(GO) build -o $(CURDIR)/bin/vaultk8s-serve ./serve
	$(GO) run ./hack/loadtest -webhooks mutate -server $(CURDIR)/bin/vaultk8s-serve -rate $${RATE:-500} -duration $${DURATION:-30s} $(LOADTEST_FLAGS)

# The webhook child on CPU 1, the generator on CPU 0 (PIN), so the knee is the webhook's.
LOADTEST_SWEEP ?= 500,1000,1500,2000,2500,3000,3500,4000,5000,6000,8000,10000,11000,12000,14000
LOADTEST_PIN ?= server=1;client=0
loadtest-compare: ## the highest rate with p99 < 10 ms: vault-k8s's injector, Warden's mutating webhook, Warden's two calls per pod (LOADTEST_SWEEP, DURATION=10s, LOADTEST_PIN)
	cd hack/bench/vaultk8s && $(GO) build -o $(CURDIR)/bin/vaultk8s-serve ./serve
	$(GO) build -o bin/loadtest ./hack/loadtest
	bin/loadtest -pin '$(LOADTEST_PIN)' -sweep $(LOADTEST_SWEEP) -duration $${DURATION:-10s} -webhooks mutate -server $(CURDIR)/bin/vaultk8s-serve $(LOADTEST_FLAGS)
	bin/loadtest -pin '$(LOADTEST_PIN)' -sweep $(LOADTEST_SWEEP) -duration $${DURATION:-10s} -webhooks mutate $(LOADTEST_FLAGS)
	bin/loadtest -pin '$(LOADTEST_PIN)' -sweep $(LOADTEST_SWEEP) -duration $${DURATION:-10s} $(LOADTEST_FLAGS)

images: build ## bin/images/warden-{webhook,sidecar}.tar from the static binaries, no Docker needed (WEBHOOK_IMAGE, SIDECAR_IMAGE name them)
	$(GO) run ./hack/images -out bin/images -version $(VERSION) -webhook-image $(WEBHOOK_IMAGE) -sidecar-image $(SIDECAR_IMAGE)

images-docker: ## the same images built by a Docker engine from Dockerfile.webhook and Dockerfile.sidecar
	docker build -f Dockerfile.webhook --build-arg VERSION=$(VERSION) -t $(WEBHOOK_IMAGE) .
	docker build -f Dockerfile.sidecar --build-arg VERSION=$(VERSION) -t $(SIDECAR_IMAGE) .

CONTROLLER_GEN = $(shell hack/tools/build.sh path-controller-gen)

generate: ## CRDs (manifests/base/crds) and deepcopy functions from pkg/apis, with controller-gen
	hack/tools/build.sh controller-gen
	$(CONTROLLER_GEN) object paths=./pkg/apis/...
	$(CONTROLLER_GEN) crd paths=./pkg/apis/... output:crd:dir=manifests/base/crds
	$(MAKE) --no-print-directory chart-crds chart-monitoring

# The Helm chart and the monitoring rules are checked in test/chart, a Go module of its own, so
# Helm's, kustomize's and Prometheus's dependencies stay out of Warden's go.mod.
chart-test: envtest ## the Helm chart: helm lint, default render = kustomize base, every value; monitoring rules against a running webhook and sidecar
	@# test/chart builds Warden from this tree (replace => ../..): follow Warden's go.mod first.
	cd test/chart && $(GO) mod tidy && $(GO) vet ./... && KUBEBUILDER_ASSETS=$(ENVTEST_ASSETS) $(GO) test -count=1 ./...

chart-crds: ## copy manifests/base/crds into charts/warden/crds (Helm reads no file outside the chart; chart-test fails when they differ)
	rm -f charts/warden/crds/*.yaml
	cp manifests/base/crds/*.yaml charts/warden/crds/

chart-monitoring: ## copy manifests/monitoring's objects into charts/warden/files/monitoring (chart-test fails when they differ)
	rm -f charts/warden/files/monitoring/*.yaml
	cp manifests/monitoring/service.yaml manifests/monitoring/servicemonitor.yaml manifests/monitoring/podmonitor.yaml manifests/monitoring/prometheusrule.yaml charts/warden/files/monitoring/

clean:
	rm -rf bin
