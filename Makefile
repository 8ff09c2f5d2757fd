# imagegw — the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -s -w -X main.version=$(VERSION)

.PHONY: run test test-short build sim bench bench-load fuzz vet fmt clean

## run: build bin/imagegw and start the gateway on 127.0.0.1:8080 with the embedded defaults (SQLite in ./data, sandbox provider)
run:
	@echo 'building bin/imagegw (the first build downloads modules and takes a minute or two)…'
	@CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/imagegw ./cmd/imagegw
	./bin/imagegw serve

## test: vet and run every test with the race detector (Postgres and Redis tests skip unless reachable; CI=true makes them required), then the stack budget of a request, which the race detector's larger frames would fail
test: vet
	$(GO) test -race -count=1 -timeout 12m ./...
	$(GO) test -count=1 -run '^TestRequestFitsInAGoroutinesFirstStack$$' ./internal/app/
	$(GO) test -count=1 -tags purego -run 'Base64' ./providers/

## test-short: the tests without the race detector, faster while editing
test-short:
	$(GO) test -count=1 ./...

## build: build the gateway and the simulator into ./bin (bin/imagegw, bin/imagegw-sim, bin/imagegw-load)
build:
	@echo 'building into bin/ (the first build downloads modules and takes a minute or two)…'
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/...
	@echo 'built:' $$(ls bin)

## sim: run every provider's fake API on 127.0.0.1:9090 (see `go run ./cmd/imagegw-sim -print-env`)
sim:
	@echo 'building imagegw-sim (the first build downloads modules and takes a minute or two)…'
	$(GO) run ./cmd/imagegw-sim

## bench: run the benchmarks
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## bench-load: side-by-side load benchmark (direct, bare reverse proxy, imagegw lean, lean with background fsyncs, and governed on Postgres + Redis); LOADFLAGS='-runs 3 -setups all' etc.
bench-load:
	$(GO) run ./cmd/imagegw-load $(LOADFLAGS)

vet:
	$(GO) vet ./...

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin data
