# The README's commands. `make test` is what CI runs (.ci/run).
.PHONY: test vet race lint build run bench npmclient postgres

test: vet npmclient race postgres

# The whole suite once more with every test's database on PostgreSQL
# (STEWARD_TEST_STORE=postgres: storetest.MustOpen and the server harnesses
# open a fresh PostgreSQL database per test; tests that pick a store
# themselves keep it). Skipped, and said so, without a server
# (STEWARD_TEST_POSTGRES_URL); under CI=true that fails. Without -race: the
# race detector already ran over the same code above.
postgres:
	@if [ -n "$$STEWARD_TEST_POSTGRES_URL" ]; then \
		echo "STEWARD_TEST_STORE=postgres go test -count=1 -timeout 30m ./..."; \
		STEWARD_TEST_STORE=postgres go test -count=1 -timeout 30m ./...; \
	elif [ "$$CI" = true ]; then \
		echo "STEWARD_TEST_POSTGRES_URL is not set: CI must run the PostgreSQL tests" >&2; exit 1; \
	else \
		echo "PostgreSQL tests skipped: set STEWARD_TEST_POSTGRES_URL (or run scripts/with-postgres.sh make test)"; \
	fi

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
