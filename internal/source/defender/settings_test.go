package defender

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/source/pull"
	"github.com/stewardhq/steward/internal/source/pull/pulltest"
)

func TestSettingsValidate(t *testing.T) {
	ok := func() Settings {
		return Settings{Auth: AuthClientSecret, TenantID: "contoso.onmicrosoft.com", ClientID: "11111111-2222-3333-4444-555555555555",
			Subscriptions: []string{" 20FF7FC3-E762-44DD-BD96-B71116DCDC23 "}}
	}
	s := ok()
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.Subscriptions[0] != subExample {
		t.Errorf("subscription kept as %q, want it trimmed and lower case", s.Subscriptions[0])
	}
	for _, auth := range []string{AuthWorkloadIdentity, AuthManagedIdentity, AuthAzureCLI} {
		s := Settings{Auth: auth}
		if err := s.Validate(); err != nil {
			t.Errorf("auth %s alone: %v", auth, err)
		}
	}
	for _, c := range []struct {
		name  string
		mod   func(*Settings)
		field string
	}{
		{"no auth", func(s *Settings) { s.Auth = "" }, "auth"},
		{"unknown auth", func(s *Settings) { s.Auth = "password" }, "auth"},
		{"client_secret without tenant", func(s *Settings) { s.TenantID = "" }, "tenant_id"},
		{"client_secret without client", func(s *Settings) { s.ClientID = "" }, "client_id"},
		{"bad tenant", func(s *Settings) { s.TenantID = "contoso/../x" }, "tenant_id"},
		{"bad client", func(s *Settings) { s.ClientID = "app" }, "client_id"},
		{"cli with client", func(s *Settings) { s.Auth = AuthAzureCLI }, "client_id"},
		{"bad subscription", func(s *Settings) { s.Subscriptions = append(s.Subscriptions, "prod") }, "subscriptions[1]"},
		{"duplicate subscription", func(s *Settings) { s.Subscriptions = append(s.Subscriptions, subExample) }, "subscriptions[1]"},
		{"endpoint not loopback", func(s *Settings) { s.Endpoint, s.Local = "https://management.example.com", true }, "endpoint"},
		{"endpoint loopback without local", func(s *Settings) { s.Endpoint = "http://127.0.0.1:8080" }, "local"},
		{"local without endpoint", func(s *Settings) { s.Local = true }, "local"},
		{"endpoint with credentials", func(s *Settings) { s.Endpoint, s.Local = "http://u:p@127.0.0.1:1", true }, "endpoint"},
		{"endpoint not a URL", func(s *Settings) { s.Endpoint, s.Local = "127.0.0.1:1", true }, "endpoint"},
		{"endpoint that resolves elsewhere", func(s *Settings) { s.Endpoint, s.Local = "http://127.0.0.1.nip.io:1", true }, "endpoint"},
	} {
		s := ok()
		c.mod(&s)
		err := s.Validate()
		if steward.ErrorCode(err) != steward.CodeInvalid || steward.ErrorField(err) != c.field {
			t.Errorf("%s: %v (field %q), want invalid at %s", c.name, err, steward.ErrorField(err), c.field)
		}
	}
	for _, ep := range []string{"http://127.0.0.1:8443", "https://[::1]:9", "http://localhost:1/"} {
		s := ok()
		s.Endpoint, s.Local = ep, true
		if err := s.Validate(); err != nil {
			t.Errorf("%s: %v", ep, err)
		}
	}
}

func TestSecretsValidate(t *testing.T) {
	if err := (Secrets{}).Validate(Settings{Auth: AuthClientSecret}); steward.ErrorField(err) != "client_secret" {
		t.Errorf("missing secret: %v", err)
	}
	if err := (Secrets{ClientSecret: secret.New("x")}).Validate(Settings{Auth: AuthManagedIdentity}); steward.ErrorField(err) != "client_secret" {
		t.Errorf("secret with managed identity: %v", err)
	}
	if err := (Secrets{ClientSecret: secret.New("x")}).Validate(Settings{Auth: AuthClientSecret}); err != nil {
		t.Error(err)
	}
	b, _ := json.Marshal(Secrets{ClientSecret: secret.New("s3cr3t")})
	if strings.Contains(string(b), "s3cr3t") {
		t.Errorf("secrets marshal as %s", b)
	}
}

// entra answers like Microsoft Entra ID's token endpoints for one tenant
// (OpenID discovery and the client-credentials grant), in front of the
// fake ARM, so New's real ClientSecretCredential runs against loopback.
type entra struct {
	arm        *fakeARM
	refuse     bool
	secretSeen string
}

const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"

func (e *entra) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	base := "https://" + r.Host + "/" + tenant
	switch {
	case strings.HasSuffix(r.URL.Path, "/.well-known/openid-configuration"):
		writeJSON(w, map[string]any{"token_endpoint": base + "/oauth2/v2.0/token", "authorization_endpoint": base + "/oauth2/v2.0/authorize",
			"issuer": "https://login.microsoftonline.com/" + tenant + "/v2.0"})
	case strings.HasSuffix(r.URL.Path, "/oauth2/v2.0/token"):
		b, _ := io.ReadAll(r.Body)
		if strings.Contains(string(b), "client_secret=") {
			e.secretSeen = string(b)
		}
		if e.refuse {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = io.WriteString(w, `{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys for app '11111111-2222-3333-4444-555555555555' are expired.","error_codes":[7000222]}`)
			return
		}
		writeJSON(w, map[string]any{"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600, "access_token": "fake-access-token"})
	default:
		e.arm.ServeHTTP(w, r)
	}
}

func TestNewClientSecretAgainstLocalEntra(t *testing.T) {
	const clientSecret = "Q~s3cr3t-value-that-must-never-show"
	var logs bytes.Buffer
	for _, refuse := range []bool{false, true} {
		f := newFakeARM()
		loadWorld(t, f)
		e := &entra{arm: f, refuse: refuse}
		srv := httptest.NewTLSServer(e)
		defer srv.Close()
		p, err := New(Settings{Auth: AuthClientSecret, TenantID: tenant, ClientID: "11111111-2222-3333-4444-555555555555",
			Subscriptions: []string{subExample}, Endpoint: srv.URL, Local: true},
			Secrets{ClientSecret: secret.New(clientSecret)}, pull.Env{HTTPClient: srv.Client(), Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
		if err != nil {
			t.Fatal(err)
		}
		sink := pulltest.NewSink()
		err = p.Pull(context.Background(), sink)
		if !strings.Contains(e.secretSeen, "client_secret=") {
			t.Errorf("refuse %v: the token endpoint never saw the secret", refuse)
		}
		if !refuse {
			if err != nil || len(sink.DoneUnits) != 1 || len(sink.All()) != 2 {
				t.Errorf("pull with a good secret: %v, done %d, %d observations", err, len(sink.DoneUnits), len(sink.All()))
			}
			if f.authSeen[0] != "Bearer fake-access-token" {
				t.Errorf("ARM saw %q", f.authSeen[0])
			}
			continue
		}
		if steward.ErrorCode(err) != steward.CodeUnauthorized {
			t.Fatalf("Pull with an expired secret = %v, want unauthorized", err)
		}
		msg := steward.ErrorMessage(err)
		if !strings.Contains(msg, "defender source") || !strings.Contains(msg, "401") {
			t.Errorf("message %q does not name the source and the refusal", msg)
		}
		if !strings.Contains(logs.String(), "unit failed") {
			t.Errorf("the failed units are not logged: %s", logs.String())
		}
		all := err.Error() + logs.String()
		for _, fe := range sink.FailedUnits {
			all += " " + fe.Error()
		}
		if strings.Contains(all, clientSecret) || strings.Contains(all, "s3cr3t") {
			t.Errorf("the secret is in the error: %s", all)
		}
		if len(f.authSeen) != 0 {
			t.Errorf("ARM was asked %d times without a token", len(f.authSeen))
		}
	}
}
