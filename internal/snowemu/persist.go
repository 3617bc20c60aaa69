package snowemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// snapshot is the persisted form of the store.
type snapshot struct {
	Version   int                            `json:"version"`
	Tables    map[string][]map[string]string `json:"tables"`
	Counters  map[string]int                 `json:"counters"`
	Passwords map[string]string              `json:"passwords"` // user sys_id → password (test data only)
}

// Save writes every record, number counter and user password as JSON.
func (e *Emulator) Save(w io.Writer) error {
	e.mu.RLock()
	s := snapshot{Version: 1, Tables: map[string][]map[string]string{}, Counters: map[string]int{}, Passwords: e.passwords}
	for name, t := range e.tables {
		rows := t.rows()
		out := make([]map[string]string, len(rows))
		for i, r := range rows {
			out[i] = r.fields
		}
		s.Tables[name] = out
		s.Counters[name] = t.counter
	}
	enc := json.NewEncoder(w)
	err := enc.Encode(s)
	e.mu.RUnlock()
	if err != nil {
		return fmt.Errorf("encode snapshot: %w", err)
	}
	return nil
}

// Load replaces the store with a snapshot written by Save. Unknown tables
// are skipped; records get any fields added to the dictionary since.
func (e *Emulator) Load(r io.Reader) error {
	var s snapshot
	if err := json.NewDecoder(r).Decode(&s); err != nil {
		return fmt.Errorf("decode snapshot: %w", err)
	}
	if s.Version != 1 {
		return fmt.Errorf("decode snapshot: unsupported version %d", s.Version)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	tables := make(map[string]*table, len(e.schema))
	for name, def := range e.schema {
		t := newTable(def)
		for _, rec := range s.Tables[name] {
			if rec["sys_id"] == "" {
				continue
			}
			f := e.blankFields(def)
			for k, v := range rec {
				if def.field(k) != nil {
					f[k] = v
				}
			}
			t.add(&row{fields: f})
		}
		if c, ok := s.Counters[name]; ok && c > 0 {
			t.counter = c
		}
		tables[name] = t
	}
	e.tables = tables
	e.passwords = s.Passwords
	if e.passwords == nil {
		e.passwords = map[string]string{}
	}
	return nil
}

func (e *Emulator) loadFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	defer f.Close()
	if err := e.Load(f); err != nil {
		return fmt.Errorf("load %s: %w", path, err)
	}
	return nil
}

// saveFile writes atomically (temp file + rename) so a crash never leaves a
// truncated data file.
func (e *Emulator) saveFile(path string) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".snowemu-*.json")
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := e.Save(tmp); err != nil {
		return errors.Join(err, tmp.Close())
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close temp file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("rename data file: %w", err)
	}
	return nil
}
