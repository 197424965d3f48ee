# Shardline's two entry points: `make demo` and `make test`. Both start the local stack
# (localstack/up: kinesis-mock, dynalite, Redis on 127.0.0.1) first.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.6.1
# Loads the endpoints localstack/up wrote.
WITH_STACK := set -a && . localstack/.run/env && set +a &&
FUZZTIME ?= 10s

.PHONY: test demo up down lint unit fuzz bench check-docker reliability kinesalite

up:
	./localstack/up >/dev/null

down:
	./localstack/down

lint:
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^bench/') $$(git ls-files --others --exclude-standard '*.go' | grep -v '^bench/')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed:"; echo "$$unformatted"; exit 1; fi
	go vet ./...
	go run $(STATICCHECK) ./...

unit: up
	$(WITH_STACK) go test -race -count=1 -timeout 20m ./...

fuzz:
	go test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./aggregation
	go test -run '^$$' -fuzz '^FuzzGetRecords$$' -fuzztime $(FUZZTIME) ./internal/wire
	go test -run '^$$' -fuzz '^FuzzPutRecords$$' -fuzztime $(FUZZTIME) ./internal/wire
	go test -run '^$$' -fuzz '^FuzzPutRecordsRequest$$' -fuzztime $(FUZZTIME) ./internal/wire

# The integration suite again on kinesalite, the other engine users run (kinesis-mock is the
# one `unit` uses), with the wire codec on as by default; without -race, which `unit` covers.
# Left out, for what kinesalite 3.3.3 lacks (README, "Local stack"):
# UpdateShardCount (TestStreamLifecycle, TestDashboardOnPrometheus), DescribeLimits (TestRun
# of kinesis-proxy), MillisBehindLatest (always 0: TestGroup's lag), an answer to AT_TIMESTAMP
# after a shard's last record (it never answers: TestGroupOnDynamoDB's seek); TestReliability
# starts its own engines and runs in `unit`.
KINESALITE_PKGS := ./producer ./consumer ./cmd/shardline ./streams ./observability ./examples ./localstack/...
KINESALITE_SKIP := ^(TestStreamLifecycle|TestDashboardOnPrometheus|TestRun|TestGroup|TestGroupOnDynamoDB|TestReliability)$$
kinesalite: up
	./localstack/on-kinesalite go test -count=1 -timeout 20m -skip '$(KINESALITE_SKIP)' $(KINESALITE_PKGS)

# The Docker paths, checked without a Docker engine: docker-compose.yml validated by
# docker-compose (localstack/up installs it) and .github/workflows linted by actionlint.
check-docker: up
	./localstack/check-docker

# Dashboards and alerts (observability/): promtool (installed by localstack/up) checks the
# alerting rules and runs their unit tests; the dashboard is checked on a real Prometheus by
# go test ./observability, part of unit.
.PHONY: check-observability
check-observability: up
	promtool check rules observability/prometheus/shardline-alerts.yml
	promtool test rules observability/prometheus/shardline-alerts_test.yml

test: check-observability
test: check-docker lint unit kinesalite fuzz

# The demo keeps its stream and Redis keys (-keep) so that `shardline group status` can show
# its group last; both are removed afterwards. The stream name is read from the demo's first
# line ("... stream shardline-demo-<unix time> ..."); the group is "demo" under the key prefix
# "shardline-demo:<stream>" (both set in examples/demo).
SHARDLINE_BIN := localstack/.run/shardline
demo: up
	go build -o $(SHARDLINE_BIN) ./cmd/shardline
	$(WITH_STACK) rc=0; go run ./examples/demo -keep | tee localstack/.run/demo.out || rc=$$?; \
	stream=$$(sed -n 's/.* stream \(shardline-demo-[0-9]*\) .*/\1/p' localstack/.run/demo.out | head -1); \
	store="$${SHARDLINE_REDIS_URL:-redis://127.0.0.1:6379/0}?prefix=shardline-demo:$$stream"; \
	if [ -n "$$stream" ]; then \
		echo; echo "== shardline --local group status $$stream --group demo --store $$store"; \
		$(SHARDLINE_BIN) --local group status "$$stream" --group demo --store "$$store" || rc=1; \
		$(SHARDLINE_BIN) --local group delete "$$stream" --group demo --store "$$store" >/dev/null || rc=1; \
		$(SHARDLINE_BIN) --local delete "$$stream" >/dev/null || rc=1; \
	fi; exit $$rc

# The full fault matrix (issue 9): prints the table and writes reliability.json. The short
# matrix runs in `make test` as part of ./examples.
reliability: up
	$(WITH_STACK) go test -count=1 -timeout 30m -run '^TestReliability$$' -v ./examples \
		-args -reliability.full -reliability.json=$(CURDIR)/reliability.json

bench: up
	go test -run '^$$' -bench . -benchmem ./aggregation ./metrics/... ./producer ./consumer
