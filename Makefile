# The README's commands. `make test` is what CI runs (.ci/run).
.PHONY: test vet race build run bench

test: vet race

vet:
	go vet ./...

race:
	go test -race -count=1 ./...

build:
	go build -o bin/steward ./cmd/steward

run:
	go run ./cmd/steward serve --sample

bench:
	go test -run '^$$' -bench . -benchmem ./...
