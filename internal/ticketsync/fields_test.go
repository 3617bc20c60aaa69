package ticketsync_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
	"github.com/stewardhq/steward/internal/snowemu"
)

// TestIntegrationValidationFields: every refusal of an integration, from
// its settings or from the connection check against the instance, names
// the field to fix (JSON error.field), so a form shows the message there.
// One case per mapping kind; nothing is saved.
func TestIntegrationValidationFields(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{emu: snowemu.Options{ClientCredentials: true}})

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	refusedURL := "http://" + closed.Addr().String()
	closed.Close()
	tlsSrv := httptest.NewTLSServer(b.emu) // a certificate no one trusts
	t.Cleanup(tlsSrv.Close)
	// A web server that is not ServiceNow: no Table API.
	notSN := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(notSN.Close)
	// A web server answering an HTML page for everything.
	htmlSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = io.WriteString(w, "<html><body>Welcome</body></html>")
	}))
	t.Cleanup(htmlSrv.Close)
	// The emulator, where an ACL denies the integration user the problem
	// table (ServiceNow's 403 answer).
	acl := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/now/table/problem") {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusForbidden)
			_, _ = io.WriteString(w, `{"error":{"message":"Operation Failed","detail":"ACL Exception Read Failed due to security constraints"},"status":"failure"}`)
			return
		}
		b.emu.ServeHTTP(w, r)
	}))
	t.Cleanup(acl.Close)

	basic := func(r *apiclient.IntegrationRequest) { r.AuthMode, r.ClientID, r.ClientSecret = ptr("basic"), nil, nil }
	cases := []struct {
		name   string
		mutate func(r *apiclient.IntegrationRequest)
		field  string
		want   string // part of the message
	}{
		// Settings, before anything is sent.
		{"NoName", func(r *apiclient.IntegrationRequest) { r.Name = ptr(" ") }, "name", "name is required"},
		{"NoScope", func(r *apiclient.IntegrationRequest) { r.Scope = nil }, "scope", "scope is required"},
		{"MalformedURL", func(r *apiclient.IntegrationRequest) { r.InstanceURL = ptr("not a url") }, "instance_url", "not a URL"},
		{"HTTPNotLocal", func(r *apiclient.IntegrationRequest) { r.Local = ptr(false) }, "local", "local: true"},
		{"UnknownAuthMode", func(r *apiclient.IntegrationRequest) { r.AuthMode = ptr("kerberos") }, "auth_mode", "not one of"},
		{"NoUsername", func(r *apiclient.IntegrationRequest) { r.Username = nil }, "username", "needs username"},
		{"NoPassword", func(r *apiclient.IntegrationRequest) { r.Password = nil }, "password", "needs username and password"},
		{"NoClientID", func(r *apiclient.IntegrationRequest) { r.ClientID = nil }, "client_id", "needs client_id"},
		{"NoClientSecret", func(r *apiclient.IntegrationRequest) { r.ClientSecret = nil }, "client_secret", "needs client_id and client_secret"},
		{"BadTemplate", func(r *apiclient.IntegrationRequest) {
			r.TicketTypes = map[steward.TicketType]steward.TicketMapping{steward.TicketTypeIncident: {ShortDescription: "{{.Nope"}}
		}, "ticket_types.incident.short_description", "short_description template"},
		{"BadDescriptionTemplate", func(r *apiclient.IntegrationRequest) {
			r.TicketTypes = map[steward.TicketType]steward.TicketMapping{steward.TicketTypeProblem: {Description: "{{.Nope}}"}}
		}, "ticket_types.problem.description", "description template"},
		{"BadFixedField", func(r *apiclient.IntegrationRequest) {
			r.TicketTypes = map[steward.TicketType]steward.TicketMapping{steward.TicketTypeIncident: {Fields: map[string]string{"Bad Name": "x"}}}
		}, "ticket_types.incident.fields", "not a field name"},

		// The connection check: where the instance cannot be reached.
		{"ConnectionRefused", func(r *apiclient.IntegrationRequest) { r.InstanceURL = ptr(refusedURL) }, "instance_url", "refused"},
		{"TLS", func(r *apiclient.IntegrationRequest) { r.InstanceURL = ptr(tlsSrv.URL) }, "instance_url", "certificate"},
		{"OutboundPolicy", func(r *apiclient.IntegrationRequest) { r.InstanceURL, r.Local = ptr(tlsSrv.URL), ptr(false) }, "instance_url", "loopback"},
		{"NotServiceNow", func(r *apiclient.IntegrationRequest) { basic(r); r.InstanceURL = ptr(notSN.URL) }, "instance_url", "not found"},
		{"HTMLPage", func(r *apiclient.IntegrationRequest) { basic(r); r.InstanceURL = ptr(htmlSrv.URL) }, "instance_url", "HTML page"},
		{"NoOAuthEndpoint", func(r *apiclient.IntegrationRequest) { r.InstanceURL = ptr(notSN.URL) }, "auth_mode", "OAuth"},

		// The connection check: credentials.
		{"BadPassword", func(r *apiclient.IntegrationRequest) { r.Password = ptr("wrong-password") }, "password", "password"},
		{"BadBasicPassword", func(r *apiclient.IntegrationRequest) { basic(r); r.Password = ptr("wrong-password") }, "password", "user name or password"},
		{"BadClientSecret", func(r *apiclient.IntegrationRequest) { r.ClientSecret = ptr("wrong-secret") }, "client_secret", "client"},
		{"BadClientCredentialsSecret", func(r *apiclient.IntegrationRequest) {
			r.AuthMode, r.Username, r.Password, r.ClientSecret = ptr("client_credentials"), nil, nil, ptr("wrong-secret")
		}, "client_secret", "client"},

		// The connection check: tables.
		{"UnknownTable", func(r *apiclient.IntegrationRequest) {
			r.TicketTypes = map[steward.TicketType]steward.TicketMapping{steward.TicketTypeIncident: {Table: "u_no_such_table"}}
		}, "ticket_types.incident.table", "u_no_such_table"},
		{"TableForbidden", func(r *apiclient.IntegrationRequest) { r.InstanceURL = ptr(acl.URL) }, "ticket_types.problem.table", `may not read table "problem"`},
	}
	for _, tc := range cases {
		req := apiclient.IntegrationRequest{Name: ptr("x"), Scope: ptr("/"), InstanceURL: ptr(b.emuURL), Local: ptr(true),
			AuthMode: ptr("oauth_password"), Username: ptr("admin"), Password: ptr(emuPassword), ClientID: ptr("steward"), ClientSecret: ptr(emuClientSecret)}
		tc.mutate(&req)
		_, err := b.client.CreateIntegration(t.Context(), req)
		apiErr, ok := err.(*apiclient.Error)
		require.True(t, ok, "%s: want an API error, got %v", tc.name, err)
		require.Equal(t, 400, apiErr.Status, "%s: %s", tc.name, apiErr.Message)
		require.Equal(t, tc.field, apiErr.Field, "%s: %s", tc.name, apiErr.Message)
		require.Contains(t, apiErr.Message, tc.want, tc.name)
		for _, s := range []string{emuPassword, emuClientSecret, "wrong-password", "wrong-secret"} {
			require.NotContains(t, apiErr.Message, s, tc.name)
		}
	}
	list, err := b.client.ListIntegrations(t.Context())
	require.NoError(t, err)
	require.Empty(t, list.Items, "nothing invalid was saved")
}

// TestIntegrationUpdateFields: an update refused for missing credentials
// names the credential field.
func TestIntegrationUpdateFields(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	in := b.integration(t, "basic")
	_, err := b.client.UpdateIntegration(t.Context(), in.ID, apiclient.IntegrationRequest{AuthMode: ptr("oauth_password"), ClientID: ptr("steward")})
	apiErr, ok := err.(*apiclient.Error)
	require.True(t, ok, "want an API error, got %v", err)
	require.Equal(t, 400, apiErr.Status, apiErr.Message)
	require.Equal(t, "client_secret", apiErr.Field, apiErr.Message)

	_, err = b.client.UpdateIntegration(t.Context(), in.ID, apiclient.IntegrationRequest{Password: ptr("wrong-password")})
	apiErr, ok = err.(*apiclient.Error)
	require.True(t, ok, "want an API error, got %v", err)
	require.Equal(t, "password", apiErr.Field, apiErr.Message)
}
