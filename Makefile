# corekit: one module, one binary per top-level folder.
GO      ?= go
export GOFLAGS ?= -buildvcs=false
BIN     := bin
N       ?= 3

BINARIES := etcd:etcd etcdctl:etcdctl discovery:discovery cloudinit:coreos-cloudinit fleet:fleetd fleetctl:fleetctl

.PHONY: all build test test-short vet bench bench-fleet fuzz up down status ssh e2e torture fleetfaults clean nspawn-bin

all: build

build:
	@mkdir -p $(BIN)
	@for b in $(BINARIES); do dir=$${b%%:*}; name=$${b##*:}; \
	  if [ -f $$dir/main.go ]; then echo "go build -o $(BIN)/$$name ./$$dir"; $(GO) build -o $(BIN)/$$name ./$$dir || exit 1; fi; done

vet:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# The whole suite: unit, HTTP, real-client, durability and systemd-nspawn tests.
# Tests that need root, systemd-nspawn or Debian's etcd skip with a message when
# those are absent; .ci/run installs them so that in CI every test runs.
test: build vet
	$(GO) test -count=1 -timeout 25m ./...

test-short: build
	$(GO) test -count=1 -short ./...

# Side by side with Debian's etcd 3.4 (--enable-v2): single member, then 3-member clusters.
bench: build
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./etcd/bench/
	$(GO) test -run '^$$' -bench Cluster -benchtime 2000x -timeout 30m ./etcd/cluster/

# fleet at scale: simulated agents (real engine, in-memory unit managers), 100 machines x 2,000 units;
# then 1,000 units on 3 real systemd-nspawn machines (root + systemd-nspawn, else it skips loudly).
bench-fleet: build
	$(GO) test -run '^$$' -bench SimulatedCluster -benchtime 1x -timeout 30m ./fleet/internal/sim/
	$(GO) test -run '^$$' -bench RealCluster -benchtime 1x -timeout 15m -v ./fleet/bench/

# The user's story (DESIGN.md steps 1-6) on a `make up` cluster; needs root + systemd-nspawn.
e2e: build
	$(GO) test -count=1 -v -timeout 10m ./tests/e2e/

# Fault injection with linearizability checking (root, iproute2). A short run is part of make test.
TORTURE_IMPL ?= both
TORTURE_MEMBERS ?= 3,5
TORTURE_DURATION ?= 60s
TORTURE_RUNS ?= 10
# empty: kills, pauses, partitions; every: also clock jumps, full disks, fsync errors
TORTURE_FAULTS ?=
torture:
	$(GO) test ./etcd/torture -run '^TestTorture$$' -v -count=1 -timeout 0 -torture.impl=$(TORTURE_IMPL) -torture.members=$(TORTURE_MEMBERS) -torture.duration=$(TORTURE_DURATION) -torture.runs=$(TORTURE_RUNS) -torture.faults=$(TORTURE_FAULTS)

# fleet under faults on nspawn machines (root, systemd-container); docs/reliability-fleet.md
FLEETFAULTS_ROUNDS ?= 8
fleetfaults:
	$(GO) test ./tests/fleetfaults -run '^TestFleetFaults$$' -v -count=1 -timeout 0 -fleetfaults.rounds=$(FLEETFAULTS_ROUNDS) -fleetfaults.partition-hold=20s

fuzz:
	@echo "see docs: make fuzz runs each fuzz target for FUZZTIME (default 30s)"
	@for t in $$(grep -rl --include='*_test.go' '^func Fuzz' . | xargs -n1 dirname | sort -u); do \
	  for f in $$(grep -h '^func Fuzz' $$t/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do \
	    echo "fuzz $$t $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $${FUZZTIME:-30s} $$t || exit 1; done; done

# The local machine provider: boots N systemd-nspawn machines from user-data.
NSPAWN    := $(BIN)/corekit-nspawn
USER_DATA ?=
SUBNET    ?=

nspawn-bin:
	@mkdir -p $(BIN) && $(GO) build -o $(NSPAWN) ./vagrant/nspawn

up: build nspawn-bin
	$(NSPAWN) up -root . -n $(N) $(if $(USER_DATA),-user-data $(USER_DATA)) $(if $(SUBNET),-subnet $(SUBNET))

status: nspawn-bin
	@$(NSPAWN) status

ssh: nspawn-bin
	@test -n "$(M)" || { echo "usage: make ssh M=core-01"; exit 2; }
	@$(NSPAWN) ssh $(M)

down: nspawn-bin
	@$(NSPAWN) down

clean:
	rm -rf $(BIN) default.etcd .corekit
