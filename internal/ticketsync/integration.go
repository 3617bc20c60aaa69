package ticketsync

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/store"
)

// CheckIntegration validates an integration's settings before it is
// saved, filling defaults; each error names the field to fix. It does not
// contact the instance (Validate does).
func CheckIntegration(in *steward.Integration, secrets store.IntegrationSecrets) error {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || len(in.Name) > 100 {
		return steward.InvalidAt("name", "name is required (at most 100 characters)")
	}
	if in.Type == "" {
		in.Type = steward.IntegrationServiceNow
	}
	if in.Type != steward.IntegrationServiceNow {
		return steward.InvalidAt("type", "type %q is not supported (want servicenow)", in.Type)
	}
	if err := in.Scope.Validate(); err != nil {
		return atField("scope", err)
	}
	if strings.TrimSpace(string(in.Scope)) == "" {
		return steward.InvalidAt("scope", "scope is required, e.g. /subscriptions/<id> or /aws/accounts/<id>; use / for everything")
	}
	if err := checkInstanceURL(in.InstanceURL, in.Local); err != nil {
		return err
	}
	if in.AuthMode == "" {
		in.AuthMode = steward.AuthBasic
		if in.ClientID != "" {
			in.AuthMode = steward.AuthOAuthPassword
		}
	}
	switch in.AuthMode {
	case steward.AuthBasic, steward.AuthOAuthPassword:
		if in.Username == "" {
			return steward.InvalidAt("username", "auth_mode %s needs username and password", in.AuthMode)
		}
		if secrets.Password.IsZero() && !in.HasPassword {
			return steward.InvalidAt("password", "auth_mode %s needs username and password", in.AuthMode)
		}
		if in.AuthMode == steward.AuthOAuthPassword && in.ClientID == "" {
			return steward.InvalidAt("client_id", "auth_mode oauth_password needs client_id and client_secret")
		}
		if in.AuthMode == steward.AuthOAuthPassword && secrets.ClientSecret.IsZero() && !in.HasClientSecret {
			return steward.InvalidAt("client_secret", "auth_mode oauth_password needs client_id and client_secret")
		}
	case steward.AuthClientCredentials:
		if in.ClientID == "" {
			return steward.InvalidAt("client_id", "auth_mode client_credentials needs client_id and client_secret")
		}
		if secrets.ClientSecret.IsZero() && !in.HasClientSecret {
			return steward.InvalidAt("client_secret", "auth_mode client_credentials needs client_id and client_secret")
		}
	default:
		return steward.InvalidAt("auth_mode", "auth_mode %q is not one of oauth_password, basic, client_credentials", in.AuthMode)
	}
	if in.TicketTypes == nil {
		in.TicketTypes = map[steward.TicketType]steward.TicketMapping{}
	}
	for tt, m := range in.TicketTypes {
		if _, err := steward.ParseTicketType(string(tt)); err != nil {
			return atField("ticket_types", err)
		}
		at := func(sub string) string { return "ticket_types." + string(tt) + "." + sub }
		if m.Table != "" && !validName(m.Table) {
			return steward.InvalidAt(at("table"), "ticket_types.%s.table %q is not a table name", tt, m.Table)
		}
		if len(m.CloseCode) > 40 || strings.ContainsAny(m.CloseCode, "^\n") {
			return steward.InvalidAt(at("close_code"), "ticket_types.%s.close_code is not a close code", tt)
		}
		for f := range m.Fields {
			if !validName(f) {
				return steward.InvalidAt(at("fields"), "ticket_types.%s.fields: %q is not a field name", tt, f)
			}
		}
		if _, _, err := Render(m, SampleData()); err != nil {
			// Which template failed: the short description alone, or else
			// the description.
			field := at("description")
			if _, _, serr := Render(steward.TicketMapping{ShortDescription: m.ShortDescription}, SampleData()); serr != nil {
				field = at("short_description")
			}
			return steward.InvalidAt(field, "ticket_types.%s: %s", tt, steward.ErrorMessage(err))
		}
	}
	if in.Priority == nil {
		in.Priority = steward.DefaultPriority()
	}
	for sev, iu := range in.Priority {
		if sev.Rank() == 0 {
			return steward.InvalidAt("priority", "priority: %q is not a severity", sev)
		}
		if !oneToThree(iu.Impact) || !oneToThree(iu.Urgency) {
			return steward.InvalidAt("priority."+string(sev), "priority.%s: impact and urgency must be \"1\", \"2\" or \"3\"", sev)
		}
	}
	if in.RequestsPerSecond == 0 {
		in.RequestsPerSecond = 10
	}
	if in.RequestsPerSecond < 0 || in.RequestsPerSecond > 1000 {
		return steward.InvalidAt("requests_per_second", "requests_per_second must be between 0 and 1000")
	}
	return checkSync(&in.Sync)
}

func checkSync(s *steward.SyncSettings) error {
	def := steward.DefaultSyncSettings()
	if s.PollInterval == 0 {
		s.PollInterval = def.PollInterval
	}
	if s.ReconcileInterval == 0 {
		s.ReconcileInterval = def.ReconcileInterval
	}
	if s.ClosedNotFixed == "" {
		s.ClosedNotFixed = def.ClosedNotFixed
	}
	if s.DeletedTicket == "" {
		s.DeletedTicket = def.DeletedTicket
	}
	if d := time.Duration(s.PollInterval); d < 30*time.Second || d > 24*time.Hour {
		return steward.InvalidAt("sync.poll_interval", "sync.poll_interval %s must be between 30s and 24h", d)
	}
	if d := time.Duration(s.ReconcileInterval); d < time.Minute || d > 7*24*time.Hour {
		return steward.InvalidAt("sync.reconcile_interval", "sync.reconcile_interval %s must be between 1m and 168h", d)
	}
	switch s.ClosedNotFixed {
	case "nothing", "reopen", "new_ticket":
	default:
		return steward.InvalidAt("sync.closed_not_fixed", "sync.closed_not_fixed %q is not one of nothing, reopen, new_ticket", s.ClosedNotFixed)
	}
	switch s.DeletedTicket {
	case "flag", "end":
	default:
		return steward.InvalidAt("sync.deleted_ticket", "sync.deleted_ticket %q is not flag or end", s.DeletedTicket)
	}
	return nil
}

// checkInstanceURL requires https, except for a loopback host on an
// integration explicitly marked local (the emulator).
func checkInstanceURL(raw string, local bool) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return steward.InvalidAt("instance_url", "instance_url %q is not a URL like https://<instance>.service-now.com", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return steward.InvalidAt("instance_url", "instance_url must not carry credentials, a query or a fragment")
	}
	loopback := isLoopback(u.Hostname())
	switch {
	case u.Scheme == "https":
	case !loopback:
		return steward.InvalidAt("instance_url", "instance_url must use https (plain http is allowed only for a loopback address with local: true; CLI: --local)")
	case !local:
		return steward.InvalidAt("local", "instance_url uses http on a loopback address; set local: true (CLI: --local) if this is the emulator")
	}
	if local && !loopback {
		return steward.InvalidAt("local", "local: true (CLI: --local) is only for loopback addresses (127.0.0.1, ::1, localhost)")
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validName(s string) bool {
	if s == "" || len(s) > 80 {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '.' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

func oneToThree(s string) bool { return s == "1" || s == "2" || s == "3" }

// atField names field on err when err is a *steward.Error, keeping its
// code and message.
func atField(field string, err error) error {
	if se, ok := errors.AsType[*steward.Error](err); ok && se.Field == "" {
		return steward.AtField(field, se)
	}
	return err
}

// CreateIntegration checks, validates against the instance (unless skip)
// and stores a new integration.
func (s *Service) CreateIntegration(ctx context.Context, in *steward.Integration, secrets store.IntegrationSecrets, skipValidation bool, actor string) error {
	if err := CheckIntegration(in, secrets); err != nil {
		return err
	}
	if !skipValidation {
		// The credentials are being entered for this URL now.
		if err := s.Validate(ctx, in, secrets, store.Origin(in.InstanceURL)); err != nil {
			return err
		}
	}
	return s.db.WithTx(ctx, func(tx *store.Tx) error { return tx.CreateIntegration(ctx, in, secrets, actor) })
}

// ValidateStored checks a saved integration's connection on demand and
// records the outcome in the audit log.
func (s *Service) ValidateStored(ctx context.Context, id int64, actor string) error {
	in, err := s.db.FindIntegrationByID(ctx, id)
	if err != nil {
		return err
	}
	creds, err := s.db.FindIntegrationCredentials(ctx, id)
	if err != nil {
		return err
	}
	verr := s.Validate(ctx, in, creds.IntegrationSecrets, creds.Origin)
	details := map[string]any{"ok": verr == nil}
	if verr != nil {
		details["error"] = steward.ErrorMessage(verr)
	}
	if err := s.db.WithTx(ctx, func(tx *store.Tx) error {
		return tx.InsertAudit(ctx, &steward.AuditEvent{Actor: actor, Action: "integration.validated", IntegrationID: id, Details: details})
	}); err != nil {
		return err
	}
	return verr
}

// UpdateIntegration applies upd after checking the result as a whole, and
// validates the connection again when a connection setting changed (unless
// skip).
//
// Stored credentials stay with the host they were entered for: moving the
// instance URL to another origin, or changing the auth mode, needs the
// credentials that mode uses in the same request, and is refused before
// anything is sent otherwise. A move drops the stored credentials that were
// not entered again.
func (s *Service) UpdateIntegration(ctx context.Context, id int64, upd store.IntegrationUpdate, skipValidation bool, actor string) (*steward.Integration, error) {
	cur, err := s.db.FindIntegrationByID(ctx, id)
	if err != nil {
		return nil, err
	}
	creds, err := s.db.FindIntegrationCredentials(ctx, id)
	if err != nil {
		return nil, err
	}
	secrets := creds.IntegrationSecrets
	next := *cur
	connection := false
	set := func(dst *string, v *string) {
		if v != nil && *v != *dst {
			*dst, connection = *v, true
		}
	}
	if upd.Name != nil {
		next.Name = *upd.Name
	}
	if upd.Scope != nil {
		next.Scope = *upd.Scope
	}
	set(&next.InstanceURL, upd.InstanceURL)
	set(&next.Username, upd.Username)
	set(&next.ClientID, upd.ClientID)
	if upd.Local != nil && *upd.Local != next.Local {
		next.Local, connection = *upd.Local, true
	}
	if upd.AuthMode != nil && *upd.AuthMode != next.AuthMode {
		next.AuthMode, connection = *upd.AuthMode, true
	}
	if upd.Password != nil {
		secrets.Password, connection = *upd.Password, true
	}
	if upd.ClientSecret != nil {
		secrets.ClientSecret, connection = *upd.ClientSecret, true
	}
	if upd.WebhookSecret != nil {
		secrets.WebhookSecret = *upd.WebhookSecret
	}
	if upd.TicketTypes != nil {
		next.TicketTypes = *upd.TicketTypes
	}
	if upd.Priority != nil {
		next.Priority = *upd.Priority
	}
	if upd.RequestsPerSecond != nil {
		next.RequestsPerSecond = *upd.RequestsPerSecond
	}
	if upd.Sync != nil {
		next.Sync = *upd.Sync
	}
	next.HasPassword, next.HasClientSecret = !secrets.Password.IsZero(), !secrets.ClientSecret.IsZero()
	if err := CheckIntegration(&next, secrets); err != nil {
		return nil, err
	}
	moved := store.Origin(next.InstanceURL) != store.Origin(cur.InstanceURL)
	if err := credentialsReentered(cur, &next, upd, moved); err != nil {
		return nil, err
	}
	if moved {
		// What was not entered again was entered for the old host: it must
		// never reach the new one, so it is dropped, not kept unused.
		var none secret.String
		if upd.Password == nil && !secrets.Password.IsZero() {
			upd.Password, secrets.Password = &none, none
		}
		if upd.ClientSecret == nil && !secrets.ClientSecret.IsZero() {
			upd.ClientSecret, secrets.ClientSecret = &none, none
		}
	}
	origin := creds.Origin
	if upd.Password != nil || upd.ClientSecret != nil {
		origin = store.Origin(next.InstanceURL)
	}
	if connection && !skipValidation {
		if err := s.Validate(ctx, &next, secrets, origin); err != nil {
			return nil, err
		}
	}
	// CheckIntegration fills defaults; pass them on so what is stored is
	// what was checked.
	upd.TicketTypes, upd.Priority, upd.Sync = &next.TicketTypes, &next.Priority, &next.Sync
	upd.RequestsPerSecond, upd.AuthMode = &next.RequestsPerSecond, &next.AuthMode
	var out *steward.Integration
	err = s.db.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		out, err = tx.UpdateIntegration(ctx, id, upd, actor)
		return err
	})
	return out, err
}

// credentialsReentered refuses an update that moves the integration to
// another origin, or changes its auth mode, without the credentials the
// (new) auth mode uses in the same request: otherwise a stored password
// and client secret would be sent to a host nobody entered them for, or
// used in a way nobody entered them for.
func credentialsReentered(cur, next *steward.Integration, upd store.IntegrationUpdate, moved bool) error {
	modeChanged := next.AuthMode != cur.AuthMode
	if !moved && !modeChanged {
		return nil
	}
	given := func(v *secret.String) bool { return v != nil && !v.IsZero() }
	var fields, flags []string
	if next.AuthMode != steward.AuthClientCredentials && !given(upd.Password) {
		fields, flags = append(fields, "password"), append(flags, "--password-file")
	}
	if next.AuthMode != steward.AuthBasic && !given(upd.ClientSecret) {
		fields, flags = append(fields, "client_secret"), append(flags, "--client-secret-file")
	}
	if len(fields) == 0 {
		return nil
	}
	change := fmt.Sprintf("changing auth_mode from %s to %s", cur.AuthMode, next.AuthMode)
	if moved {
		change = fmt.Sprintf("changing instance_url to another host (%s)", store.Origin(next.InstanceURL))
	}
	return steward.InvalidAt(fields[0],
		"%s needs %s in the same request (CLI: %s): stored credentials are only sent to the host and used in the auth mode they were entered for",
		change, strings.Join(fields, " and "), strings.Join(flags, " and "))
}
