# The README's commands. `make test` is what CI runs (.ci/run).
.PHONY: test vet race lint build run bench npmclient

test: vet npmclient race

vet:
	go vet ./...

race:
	go test -race -count=1 ./...

# The independent ServiceNow client that TestNPMClientAgainstEmulator runs
# (test/npmclient, pinned by its package-lock.json). Installed when npm is
# present and the lock file changed; otherwise the test is skipped, and
# since go test shows skips only with -v, this says so.
npmclient:
	@if [ -f test/npmclient/node_modules/.package-lock.json ] && \
	    [ ! test/npmclient/package-lock.json -nt test/npmclient/node_modules/.package-lock.json ]; then \
		:; \
	elif command -v npm >/dev/null 2>&1; then \
		echo "installing the npm client test's dependencies: (cd test/npmclient && npm ci --no-audit --no-fund)"; \
		(cd test/npmclient && npm ci --no-audit --no-fund) || \
			echo "npm ci failed: TestNPMClientAgainstEmulator will be skipped" >&2; \
	else \
		echo "npm not found: TestNPMClientAgainstEmulator (an independent Node.js client against the emulator) will be skipped; install Node.js and npm to run it" >&2; \
	fi

# staticcheck, pinned; fetched through the Go module proxy on first use.
lint:
	go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

build:
	go build -o bin/steward ./cmd/steward

run:
	go run ./cmd/steward serve --sample

bench:
	go test -run '^$$' -bench . -benchmem ./...
