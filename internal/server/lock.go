package server

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/store"
)

// DatabaseLock is held by the one process that may run the server, or the
// migrations, on a database file: two servers on one SQLite file would both
// run every job. It is an advisory lock (flock) on a file next to the
// database, so the operating system releases it when the process ends,
// however it ends: a crash never leaves it stuck. The file itself stays;
// it says who holds the lock, for the refusal message.
type DatabaseLock struct {
	f *os.File
}

// lockHolder is what the lock file says about the process holding it.
type lockHolder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Command string    `json:"command"`
	Since   time.Time `json:"since"`
}

// LockPath is the lock file of the database at path.
func LockPath(path string) string { return path + ".lock" }

// LockDatabase takes the lock of the database that url names for command
// ("serve" or "migrate"), creating the database's directory and the lock
// file if needed. Errors: CodeConflict naming the database and the process
// that holds the lock.
//
// A PostgreSQL database takes no lock: any number of processes share it
// (migrations serialize themselves with an advisory lock in the store).
func LockDatabase(url, command string) (*DatabaseLock, error) {
	if store.IsPostgresURL(url) {
		return &DatabaseLock{}, nil
	}
	path, err := store.FilePath(url)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("lock database: create directory: %w", err)
	}
	lockPath := LockPath(path)
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock database: %w", err)
	}
	acquired, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock database %s: %w", lockPath, err)
	}
	if !acquired {
		f.Close()
		return nil, steward.Errorf(steward.CodeConflict,
			"database %s is in use by %s: one steward serve (or migrate) per database file; stop that process first (it holds %s)",
			path, describeHolder(lockPath), lockPath)
	}
	host, _ := os.Hostname()
	b, _ := json.Marshal(lockHolder{PID: os.Getpid(), Host: host, Command: command, Since: time.Now().UTC().Truncate(time.Second)})
	if err := writeHolder(f, append(b, '\n')); err != nil {
		f.Close() // releases the lock
		return nil, fmt.Errorf("lock database: write %s: %w", lockPath, err)
	}
	return &DatabaseLock{f: f}, nil
}

// Release clears the holder and releases the lock. It may be called more
// than once.
func (l *DatabaseLock) Release() error {
	if l == nil || l.f == nil {
		return nil
	}
	f := l.f
	l.f = nil
	_ = f.Truncate(0) // an empty file names nobody; the lock is what counts
	if err := f.Close(); err != nil {
		return fmt.Errorf("release database lock: %w", err)
	}
	return nil
}

func writeHolder(f *os.File, b []byte) error {
	if err := f.Truncate(0); err != nil {
		return err
	}
	_, err := f.WriteAt(b, 0)
	return err
}

// describeHolder names the process that holds the lock file, as far as the
// file tells (it may be empty for a moment while its holder writes it).
func describeHolder(lockPath string) string {
	b, err := os.ReadFile(lockPath)
	var h lockHolder
	if err != nil || json.Unmarshal(b, &h) != nil || h.PID == 0 {
		return "another steward process"
	}
	s := fmt.Sprintf("steward %s (PID %d", h.Command, h.PID)
	if h.Host != "" {
		s += " on host " + h.Host
	}
	if !h.Since.IsZero() {
		s += ", since " + h.Since.Format(time.RFC3339)
	}
	return s + ")"
}
