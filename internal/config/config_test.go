package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/config"
)

func oidcEnv(t *testing.T, over map[string]string) func(string) string {
	t.Helper()
	env := map[string]string{
		"STEWARD_DATABASE_URL":   filepath.Join(t.TempDir(), "steward.db"),
		"STEWARD_PUBLIC_URL":     "https://steward.example.com",
		"STEWARD_OIDC_ISSUER":    "https://login.example.com/realms/main",
		"STEWARD_OIDC_CLIENT_ID": "steward",
		"STEWARD_OIDC_ROLES":     "steward-owners=owner, secops=security-admin,engineering=contributor,*=reader",
	}
	for k, v := range over {
		env[k] = v
	}
	return func(k string) string { return env[k] }
}

// TestOIDCConfigFromEnv: the STEWARD_OIDC_* variables, their defaults, the
// derived redirect URL and the client secret read from its file (and
// never printed).
func TestOIDCConfigFromEnv(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "oidc-secret")
	require.NoError(t, os.WriteFile(secretFile, []byte("s3cr3t-value\n"), 0o600))
	c, err := config.FromEnv(oidcEnv(t, map[string]string{"STEWARD_OIDC_CLIENT_SECRET_FILE": secretFile,
		"STEWARD_OIDC_SCOPE_CLAIM": "steward_scope", "STEWARD_PUBLIC_URL": "https://steward.example.com/"}))
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	o, err := c.LoadOIDC()
	require.NoError(t, err)
	require.Equal(t, "https://login.example.com/realms/main", o.Issuer)
	require.Equal(t, "steward", o.ClientID)
	require.Equal(t, "s3cr3t-value", o.ClientSecret.Reveal())
	require.NotContains(t, fmt.Sprintf("%v %+v %#v", o, o, o), "s3cr3t-value")
	require.Equal(t, "your identity provider", o.DisplayName)
	require.Equal(t, "groups", o.RoleClaim)
	require.Equal(t, "steward_scope", o.ScopeClaim)
	require.Equal(t, "https://steward.example.com/signin/oidc/callback", o.RedirectURL)
	require.Equal(t, []string{"openid", "email", "profile"}, o.Scopes)
	require.Equal(t, map[string]steward.Role{"steward-owners": steward.RoleOwner, "secops": steward.RoleSecurityAdmin,
		"engineering": steward.RoleContributor, "*": steward.RoleReader}, o.Roles)

	// Without an issuer nothing is configured.
	c, err = config.FromEnv(func(k string) string { return map[string]string{"STEWARD_DATABASE_URL": "x.db"}[k] })
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	o, err = c.LoadOIDC()
	require.NoError(t, err)
	require.Nil(t, o)
}

// TestOIDCConfigValidation: each bad OIDC setting fails Validate, before
// the server writes anything, with an error naming its variable.
func TestOIDCConfigValidation(t *testing.T) {
	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"client ID without issuer", map[string]string{"STEWARD_OIDC_ISSUER": ""}, "STEWARD_OIDC_CLIENT_ID is set but STEWARD_OIDC_ISSUER is not"},
		{"roles without issuer", map[string]string{"STEWARD_OIDC_ISSUER": "", "STEWARD_OIDC_CLIENT_ID": ""}, "STEWARD_OIDC_ROLES is set but STEWARD_OIDC_ISSUER is not"},
		{"issuer not a URL", map[string]string{"STEWARD_OIDC_ISSUER": "login.example.com"}, "STEWARD_OIDC_ISSUER"},
		{"issuer over plain http", map[string]string{"STEWARD_OIDC_ISSUER": "http://login.example.com"}, "STEWARD_OIDC_ISSUER"},
		{"no client ID", map[string]string{"STEWARD_OIDC_CLIENT_ID": ""}, "STEWARD_OIDC_CLIENT_ID is required"},
		{"no public URL", map[string]string{"STEWARD_PUBLIC_URL": ""}, "STEWARD_PUBLIC_URL is required"},
		{"public URL not a URL", map[string]string{"STEWARD_PUBLIC_URL": "steward.example.com"}, "STEWARD_PUBLIC_URL"},
		{"no roles", map[string]string{"STEWARD_OIDC_ROLES": ""}, "STEWARD_OIDC_ROLES is required"},
		{"role pair without =", map[string]string{"STEWARD_OIDC_ROLES": "admins"}, "STEWARD_OIDC_ROLES: \"admins\" is not value=role"},
		{"unknown role", map[string]string{"STEWARD_OIDC_ROLES": "admins=root"}, "STEWARD_OIDC_ROLES: role \"root\""},
		{"value mapped twice", map[string]string{"STEWARD_OIDC_ROLES": "a=owner,a=reader"}, "STEWARD_OIDC_ROLES maps \"a\" twice"},
		{"scopes without openid", map[string]string{"STEWARD_OIDC_SCOPES": "email groups"}, "STEWARD_OIDC_SCOPES"},
		{"missing secret file", map[string]string{"STEWARD_OIDC_CLIENT_SECRET_FILE": filepath.Join(t.TempDir(), "nope")}, "STEWARD_OIDC_CLIENT_SECRET_FILE: cannot read"},
		{"empty secret file", map[string]string{"STEWARD_OIDC_CLIENT_SECRET_FILE": empty}, "STEWARD_OIDC_CLIENT_SECRET_FILE: " + empty + " is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := config.FromEnv(oidcEnv(t, tc.env))
			require.NoError(t, err)
			err = c.Validate()
			require.Error(t, err)
			require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
			require.Contains(t, err.Error(), tc.want)
		})
	}
	// Plain http is fine for a provider on loopback (a local test one).
	c, err := config.FromEnv(oidcEnv(t, map[string]string{"STEWARD_OIDC_ISSUER": "http://127.0.0.1:5556/dex"}))
	require.NoError(t, err)
	require.NoError(t, c.Validate())
}

// TestPostgresConfig: a postgres:// URL needs a shared secret key, takes
// its spool and token file from the working directory rather than from a
// path derived from the URL, and none of the derived settings carries the
// URL's password.
func TestPostgresConfig(t *testing.T) {
	const url = "postgres://steward:pa55word@db.example.com:5432/steward?sslmode=require&pool_max_conns=40"
	env := map[string]string{"STEWARD_DATABASE_URL": url}
	getenv := func(k string) string { return env[k] }
	c, err := config.FromEnv(getenv)
	require.NoError(t, err)
	require.True(t, c.Postgres())
	err = c.Validate()
	require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
	require.ErrorContains(t, err, "STEWARD_SECRET_KEY or STEWARD_SECRET_KEY_FILE")
	require.NotContains(t, err.Error(), "pa55word")

	env["STEWARD_SECRET_KEY_FILE"] = "/etc/steward/steward.key"
	c, err = config.FromEnv(getenv)
	require.NoError(t, err)
	require.NoError(t, c.Validate())
	require.Equal(t, "steward-spool", c.SpoolDir)
	require.Equal(t, "/etc/steward/steward.key", c.SecretKeyFile)
	require.Equal(t, "steward.token", c.TokenFile())
	require.NotContains(t, fmt.Sprintf("%s %s %s", c.SpoolDir, c.SecretKeyFile, c.TokenFile()), "pa55word")

	// postgresql:// is the same thing; a SQLite path keeps its defaults.
	require.True(t, (&config.Config{DatabaseURL: "postgresql://localhost/steward"}).Postgres())
	s := config.Default()
	s.DatabaseURL = filepath.Join("data", "steward.db")
	require.False(t, s.Postgres())
	require.NoError(t, s.Validate())
	require.Equal(t, filepath.Join("data", "steward-spool"), s.SpoolDir)
	require.Equal(t, filepath.Join("data", "steward.key"), s.SecretKeyFile)
	require.Equal(t, filepath.Join("data", "steward.token"), s.TokenFile())
}
