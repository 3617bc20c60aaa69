package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/stewardhq/steward/internal/config"
)

// Where client verbs find their API token, first match wins:
//
//  1. --token, then STEWARD_TOKEN;
//  2. the token 'steward login' saved for the server, in the user's config
//     directory (credentials.json, mode 0600);
//  3. for a server on this machine (a loopback URL) only: the owner token
//     'steward serve --sample' wrote next to the database (STEWARD_DATABASE_URL,
//     default ./steward.db), so the README walkthrough needs no flag.
//
// A token from 3 is never sent to another machine.
type tokenSource struct {
	flag string
	// getenv and configDir are os.Getenv and os.UserConfigDir, replaced in tests.
	getenv    func(string) string
	configDir func() (string, error)
}

func (s tokenSource) token(server string) (string, string) {
	if s.flag != "" {
		return strings.TrimSpace(s.flag), "--token"
	}
	if v := strings.TrimSpace(s.getenv("STEWARD_TOKEN")); v != "" {
		return v, "STEWARD_TOKEN"
	}
	if path, err := s.credentialsPath(); err == nil {
		if creds, err := readCredentials(path); err == nil {
			if t := creds.Servers[normalizeServer(server)]; t != "" {
				return t, path
			}
		}
	}
	if isLoopbackURL(server) {
		cfg, err := config.FromEnv(s.getenv)
		if err == nil {
			path := cfg.TokenFile()
			if b, err := os.ReadFile(path); err == nil {
				if t := strings.TrimSpace(string(b)); t != "" {
					return t, path
				}
			}
		}
	}
	return "", ""
}

// credentials is what 'steward login' saves: a token per server URL.
type credentials struct {
	Servers map[string]string `json:"servers"`
}

func (s tokenSource) credentialsPath() (string, error) {
	dir, err := s.configDir()
	if err != nil {
		return "", fmt.Errorf("find the user config directory: %w", err)
	}
	return filepath.Join(dir, "steward", "credentials.json"), nil
}

func readCredentials(path string) (*credentials, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return &credentials{Servers: map[string]string{}}, nil
	}
	if err != nil {
		return nil, err
	}
	var c credentials
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("%s is not a Steward credentials file: %w", path, err)
	}
	if c.Servers == nil {
		c.Servers = map[string]string{}
	}
	return &c, nil
}

// writeCredentials replaces the file atomically, readable by the user only.
func writeCredentials(path string, c *credentials) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".credentials-*")
	if err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("save credentials: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("save credentials: %w", err)
	}
	return nil
}

func normalizeServer(server string) string {
	return strings.TrimRight(strings.ToLower(strings.TrimSpace(server)), "/")
}

func isLoopbackURL(server string) bool {
	u, err := url.Parse(server)
	if err != nil {
		return false
	}
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
