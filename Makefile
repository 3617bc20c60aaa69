# The README's commands. `make test` is what CI runs (.ci/run).
.PHONY: test vet race lint build run bench npmclient

test: vet npmclient race

vet:
	go vet ./...

race:
	go test -race -count=1 -timeout 30m ./...

# The independent ServiceNow client that TestNPMClientAgainstEmulator runs
# (test/npmclient, pinned by its package-lock.json). Installed when npm is
# present and the lock file changed; otherwise the test is skipped, and
# since go test shows skips only with -v, this says so.
npmclient:
	@for dir in test/npmclient test/axe; do \
	if [ -f $$dir/node_modules/.package-lock.json ] && \
	    [ ! $$dir/package-lock.json -nt $$dir/node_modules/.package-lock.json ]; then \
		:; \
	elif command -v npm >/dev/null 2>&1; then \
		echo "installing test dependencies: (cd $$dir && npm ci --no-audit --no-fund)"; \
		(cd $$dir && npm ci --no-audit --no-fund) || \
			echo "npm ci in $$dir failed: the tests that need it will be skipped" >&2; \
	else \
		echo "npm not found: TestNPMClientAgainstEmulator and the browser tests' accessibility checks will be skipped; install Node.js and npm to run them" >&2; \
	fi; \
	done

# staticcheck, pinned; fetched through the Go module proxy on first use.
lint:
	go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

build:
	go build -o bin/steward ./cmd/steward

run:
	go run ./cmd/steward serve --sample

bench:
	go test -run '^$$' -bench . -benchmem ./...
