package bench

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/stewardhq/steward/internal/store"
)

// pgDatabase is a database the bench created on a PostgreSQL server for
// one Steward server; drop removes it.
type pgDatabase struct {
	admin, name, url string
}

// createDatabase creates an empty database on the server admin names (a
// URL of any database there, with a role that may create databases).
func createDatabase(ctx context.Context, admin string) (*pgDatabase, error) {
	u, err := url.Parse(admin)
	if err != nil || !store.IsPostgresURL(admin) {
		return nil, fmt.Errorf("--db must be a postgres:// URL of a server where the bench may create databases")
	}
	name := "steward_bench_" + hex.EncodeToString(randomBytes(6))
	if err := pgExec(ctx, admin, "CREATE DATABASE "+name); err != nil {
		return nil, fmt.Errorf("create database %s on %s: %w", name, store.RedactURL(admin), err)
	}
	u.Path = "/" + name
	return &pgDatabase{admin: admin, name: name, url: u.String()}, nil
}

func (d *pgDatabase) drop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := pgExec(ctx, d.admin, "DROP DATABASE IF EXISTS "+d.name+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop database %s: %w", d.name, err)
	}
	return nil
}

func pgExec(ctx context.Context, admin, sql string) error {
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(ctx, sql)
	return err
}
