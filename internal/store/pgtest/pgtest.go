// Package pgtest gives tests a fresh PostgreSQL database of their own on the
// server that STEWARD_TEST_POSTGRES_URL names (.ci/run starts a throwaway
// one). Without that variable a test that needs PostgreSQL is skipped, and
// fails under CI=true, where the database must be there.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable holding the URL of a PostgreSQL server (any
// database on it) where tests may create and drop databases.
const EnvURL = "STEWARD_TEST_POSTGRES_URL"

// Available reports whether a PostgreSQL server is configured for tests.
func Available() bool { return os.Getenv(EnvURL) != "" }

// Require skips t when no PostgreSQL server is configured, or fails it under
// CI=true, and returns the server's URL.
func Require(t testing.TB) string {
	t.Helper()
	admin := os.Getenv(EnvURL)
	if admin == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set: CI must run the PostgreSQL tests (.ci/run starts a server)", EnvURL)
		}
		t.Skipf("PostgreSQL tests skipped: set %s to a server's URL to run them", EnvURL)
	}
	return admin
}

// URL creates an empty database for t and returns its URL; the database is
// dropped when t ends. It skips or fails t as Require does.
func URL(t testing.TB) string {
	t.Helper()
	admin := Require(t)
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("%s: %v", EnvURL, err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := fmt.Sprintf("steward_test_%s", hex.EncodeToString(b[:]))

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := exec(ctx, admin, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// FORCE: a test that failed may leave connections behind.
		if err := exec(ctx, admin, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})
	u.Path = "/" + name
	return u.String()
}

func exec(ctx context.Context, admin, sql string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}
