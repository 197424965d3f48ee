# Shardline's two entry points: `make demo` and `make test`. Both start the local stack
# (localstack/up: kinesis-mock, dynalite, Redis on 127.0.0.1) first.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.6.1
# Loads the endpoints localstack/up wrote.
WITH_STACK := set -a && . localstack/.run/env && set +a &&
FUZZTIME ?= 10s

.PHONY: test demo up down lint unit fuzz bench check-docker reliability

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
test: check-docker lint unit fuzz

demo: up
	$(WITH_STACK) go run ./examples/demo

# The full fault matrix (issue 9): prints the table and writes reliability.json. The short
# matrix runs in `make test` as part of ./examples.
reliability: up
	$(WITH_STACK) go test -count=1 -timeout 30m -run '^TestReliability$$' -v ./examples \
		-args -reliability.full -reliability.json=$(CURDIR)/reliability.json

bench: up
	go test -run '^$$' -bench . -benchmem ./aggregation ./metrics/... ./producer ./consumer
