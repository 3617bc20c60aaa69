# The README's commands. `make test` is what CI runs (.ci/run).
.PHONY: test vet race lint build run bench

test: vet race

vet:
	go vet ./...

race:
	go test -race -count=1 ./...

# staticcheck, pinned; fetched through the Go module proxy on first use.
lint:
	go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

build:
	go build -o bin/steward ./cmd/steward

run:
	go run ./cmd/steward serve --sample

bench:
	go test -run '^$$' -bench . -benchmem ./...
