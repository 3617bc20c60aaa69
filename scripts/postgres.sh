# shellcheck shell=bash
# A throwaway PostgreSQL server for tests and benchmarks: `pg_start` creates
# a cluster under a temporary directory, starts it on a free loopback port
# and exports STEWARD_TEST_POSTGRES_URL; `pg_stop` stops it and removes the
# directory. Source this file; scripts/with-postgres.sh wraps a command.
#
# The binaries come from the machine's PostgreSQL packages (pg_config
# --bindir). PostgreSQL refuses to run as root, so as root the server runs
# as the postgres user.

pg_bindir() {
	if command -v pg_config >/dev/null 2>&1 && [ -x "$(pg_config --bindir)/initdb" ]; then
		pg_config --bindir
		return
	fi
	local d
	for d in /usr/lib/postgresql/*/bin; do
		if [ -x "$d/initdb" ]; then
			echo "$d"
			return
		fi
	done
	echo "postgres.sh: no PostgreSQL server binaries (initdb, pg_ctl) found; install Debian's postgresql package" >&2
	return 1
}

pg_free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

pg_as_owner() {
	if [ "$(id -u)" = 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_start() {
	local bindir port
	bindir="$(pg_bindir)" || return 1
	PG_TMPDIR="$(mktemp -d /tmp/steward-pg.XXXXXX)"
	chmod 755 "$PG_TMPDIR"
	if [ "$(id -u)" = 0 ]; then chown postgres "$PG_TMPDIR"; fi
	pg_as_owner "$bindir/initdb" -D "$PG_TMPDIR/data" -U steward -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$PG_TMPDIR/initdb.log" 2>&1 ||
		{ cat "$PG_TMPDIR/initdb.log" >&2; return 1; }
	local tries=0
	while :; do
		port="$(pg_free_port)"
		# fsync off by default: a test server's data need not survive a power
		# cut. Benchmarks set PG_FSYNC=on to measure what production pays.
		if pg_as_owner "$bindir/pg_ctl" -D "$PG_TMPDIR/data" -l "$PG_TMPDIR/server.log" -w -t 60 \
			-o "-p $port -k $PG_TMPDIR -c listen_addresses=127.0.0.1 -c fsync=${PG_FSYNC:-off} -c max_connections=400 -c shared_buffers=256MB" start >/dev/null; then
			break
		fi
		tries=$((tries + 1))
		if [ "$tries" -ge 3 ]; then
			cat "$PG_TMPDIR/server.log" >&2
			return 1
		fi
	done
	PG_BINDIR="$bindir"
	export STEWARD_TEST_POSTGRES_URL="postgres://steward@127.0.0.1:$port/postgres?sslmode=disable"
	echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') for tests at $STEWARD_TEST_POSTGRES_URL (data in $PG_TMPDIR)"
}

pg_stop() {
	if [ -n "${PG_TMPDIR:-}" ] && [ -d "$PG_TMPDIR/data" ]; then
		pg_as_owner "$PG_BINDIR/pg_ctl" -D "$PG_TMPDIR/data" -m immediate stop >/dev/null 2>&1 || true
	fi
	if [ -n "${PG_TMPDIR:-}" ]; then rm -rf "$PG_TMPDIR"; fi
}

# pg_new_database NAME: creates (or re-creates) an empty database NAME on the
# throwaway server and prints its URL.
pg_new_database() {
	local name="$1"
	psql -q "$STEWARD_TEST_POSTGRES_URL" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name" >&2
	printf '%s\n' "${STEWARD_TEST_POSTGRES_URL/\/postgres\?//$name?}"
}
