package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
)

// integrationFlags are the settable fields of an integration. Secrets come
// from files or environment variables so they stay out of shell history
// and the process list; the plain flags exist for the emulator's throwaway
// credentials.
type integrationFlags struct {
	name, scope, instanceURL, authMode, username, clientID string
	password, passwordFile                                 string
	clientSecret, clientSecretFile                         string
	webhookSecretFile                                      string
	local, skipValidation                                  bool
	emulatorWebhooks                                       bool
	rps                                                    float64
	pollInterval, reconcileInterval                        time.Duration
	closedNotFixed, deletedTicket                          string
	tables                                                 []string
	fields                                                 []string
	templates, templateFiles                               []string
	priorities                                             []string
	closeCodes                                             []string
	// current is the stored integration when updating.
	current *steward.Integration
}

func (f *integrationFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.name, "name", "", "integration name")
	fl.StringVar(&f.scope, "scope", "", "resources it serves, e.g. /subscriptions/<id>, /aws/accounts/<id>; / for all")
	fl.StringVar(&f.instanceURL, "instance-url", "", "https://<instance>.service-now.com")
	fl.BoolVar(&f.local, "local", false, "allow a plain-http loopback URL (the built-in emulator)")
	fl.StringVar(&f.authMode, "auth-mode", "", "oauth_password (default with --client-id), basic, or client_credentials")
	fl.StringVar(&f.username, "username", "", "integration user name")
	fl.StringVar(&f.password, "password", "", "password (visible in the process list; prefer --password-file or STEWARD_SN_PASSWORD)")
	fl.StringVar(&f.passwordFile, "password-file", "", "file holding the password")
	fl.StringVar(&f.clientID, "client-id", "", "OAuth client ID")
	fl.StringVar(&f.clientSecret, "client-secret", "", "OAuth client secret (prefer --client-secret-file or STEWARD_SN_CLIENT_SECRET)")
	fl.StringVar(&f.clientSecretFile, "client-secret-file", "", "file holding the OAuth client secret")
	fl.StringVar(&f.webhookSecretFile, "webhook-secret-file", "", "file holding the secret ServiceNow signs webhooks with")
	fl.Float64Var(&f.rps, "requests-per-second", 0, "cap on calls to the instance (default 10)")
	fl.DurationVar(&f.pollInterval, "poll-interval", 0, "incremental poll interval (30s-24h, default 5m)")
	fl.DurationVar(&f.reconcileInterval, "reconcile-interval", 0, "full reconcile interval (default 24h)")
	fl.StringVar(&f.closedNotFixed, "closed-not-fixed", "", "ticket closed but resource still unhealthy: nothing, reopen or new_ticket")
	fl.StringVar(&f.deletedTicket, "deleted-ticket", "", "ticket deleted in ServiceNow: flag or end")
	fl.StringSliceVar(&f.tables, "table", nil, "TYPE=TABLE: table for a ticket type, e.g. incident=u_security_incident (repeatable)")
	fl.StringArrayVar(&f.fields, "field", nil, "TYPE.FIELD=VALUE: fixed value on new tickets, e.g. incident.category=security (repeatable)")
	fl.StringArrayVar(&f.templates, "template", nil, "TYPE.short_description=TEXT or TYPE.description=TEXT: a Go text/template over .Recommendation, .Resource, .Assessment, .Assignment, .Link (repeatable)")
	fl.StringArrayVar(&f.templateFiles, "template-file", nil, "TYPE.short_description=FILE or TYPE.description=FILE: the same, read from a file")
	fl.StringArrayVar(&f.closeCodes, "close-code", nil, "TYPE=CODE: close code Steward uses when a scan shows the resource fixed, e.g. incident=Resolved by change (default: Solution provided, problem fix_applied, change_request successful)")
	fl.StringSliceVar(&f.priorities, "priority", nil, "SEVERITY=IMPACT/URGENCY, e.g. High=1/2 (repeatable; impact and urgency are 1-3)")
	fl.BoolVar(&f.skipValidation, "skip-validation", false, "save without checking the connection first")
}

func secretValue(flagValue, file, env string) (*string, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		s := strings.TrimRight(string(b), "\r\n")
		return &s, nil
	case flagValue != "":
		return &flagValue, nil
	case os.Getenv(env) != "":
		s := os.Getenv(env)
		return &s, nil
	}
	return nil, nil
}

func (f *integrationFlags) request(cmd *cobra.Command) (apiclient.IntegrationRequest, error) {
	req := apiclient.IntegrationRequest{SkipValidation: f.skipValidation}
	changed := cmd.Flags().Changed
	str := func(flag string, v string) *string {
		if changed(flag) {
			return &v
		}
		return nil
	}
	req.Name, req.Scope, req.InstanceURL = str("name", f.name), str("scope", f.scope), str("instance-url", f.instanceURL)
	req.AuthMode, req.Username, req.ClientID = str("auth-mode", f.authMode), str("username", f.username), str("client-id", f.clientID)
	if changed("local") {
		req.Local = &f.local
	}
	if changed("requests-per-second") {
		req.RequestsPerSecond = &f.rps
	}
	var err error
	if req.Password, err = secretValue(f.password, f.passwordFile, "STEWARD_SN_PASSWORD"); err != nil {
		return req, err
	}
	if req.ClientSecret, err = secretValue(f.clientSecret, f.clientSecretFile, "STEWARD_SN_CLIENT_SECRET"); err != nil {
		return req, err
	}
	if req.WebhookSecret, err = secretValue("", f.webhookSecretFile, "STEWARD_SN_WEBHOOK_SECRET"); err != nil {
		return req, err
	}
	if changed("poll-interval") || changed("reconcile-interval") || changed("closed-not-fixed") || changed("deleted-ticket") {
		req.Sync = &steward.SyncSettings{PollInterval: steward.Duration(f.pollInterval), ReconcileInterval: steward.Duration(f.reconcileInterval),
			ClosedNotFixed: f.closedNotFixed, DeletedTicket: f.deletedTicket}
	}
	if f.current != nil && len(f.tables)+len(f.fields)+len(f.templates)+len(f.templateFiles)+len(f.closeCodes) > 0 {
		req.TicketTypes = f.current.TicketTypes
	}
	if f.current != nil && len(f.priorities) > 0 {
		req.Priority = f.current.Priority
	}
	if err := f.mapping(&req); err != nil {
		return req, err
	}
	return req, nil
}

// mapping applies --table, --field, --template(-file) and --priority onto
// req's maps, which hold the integration's current values on update, so
// the flags change only what they name.
func (f *integrationFlags) mapping(req *apiclient.IntegrationRequest) error {
	if len(f.tables)+len(f.fields)+len(f.templates)+len(f.templateFiles)+len(f.closeCodes) > 0 && req.TicketTypes == nil {
		req.TicketTypes = map[steward.TicketType]steward.TicketMapping{}
	}
	// typed splits "TYPE.NAME=VALUE" (or "TYPE=VALUE" when name is not wanted).
	typed := func(flag, arg string, wantName bool, example string) (steward.TicketType, string, string, error) {
		k, v, ok := strings.Cut(arg, "=")
		typ, name := k, ""
		if wantName {
			var ok2 bool
			typ, name, ok2 = strings.Cut(k, ".")
			ok = ok && ok2 && name != ""
		}
		tt, err := steward.ParseTicketType(typ)
		if !ok || err != nil {
			return "", "", "", fmt.Errorf("--%s %q: want %s", flag, arg, example)
		}
		return tt, name, v, nil
	}
	for _, t := range f.tables {
		tt, _, v, err := typed("table", t, false, "TYPE=TABLE, e.g. incident=u_security_incident")
		if err != nil {
			return err
		}
		m := req.TicketTypes[tt]
		m.Table = v
		req.TicketTypes[tt] = m
	}
	for _, c := range f.closeCodes {
		tt, _, v, err := typed("close-code", c, false, "TYPE=CODE, e.g. incident=Resolved by change")
		if err != nil {
			return err
		}
		m := req.TicketTypes[tt]
		m.CloseCode = v
		req.TicketTypes[tt] = m
	}
	for _, fv := range f.fields {
		tt, field, v, err := typed("field", fv, true, "TYPE.FIELD=VALUE, e.g. incident.category=security")
		if err != nil {
			return err
		}
		m := req.TicketTypes[tt]
		if m.Fields == nil {
			m.Fields = map[string]string{}
		}
		m.Fields[field] = v
		req.TicketTypes[tt] = m
	}
	setTemplate := func(flag, arg string, fromFile bool) error {
		tt, which, v, err := typed(flag, arg, true, "TYPE.short_description=... or TYPE.description=...")
		if err != nil {
			return err
		}
		if fromFile {
			b, err := os.ReadFile(v)
			if err != nil {
				return fmt.Errorf("--%s: %w", flag, err)
			}
			v = string(b)
		}
		m := req.TicketTypes[tt]
		switch which {
		case "short_description":
			m.ShortDescription = v
		case "description":
			m.Description = v
		default:
			return fmt.Errorf("--%s %q: templates exist for short_description and description, not %s", flag, arg, which)
		}
		req.TicketTypes[tt] = m
		return nil
	}
	for _, t := range f.templates {
		if err := setTemplate("template", t, false); err != nil {
			return err
		}
	}
	for _, t := range f.templateFiles {
		if err := setTemplate("template-file", t, true); err != nil {
			return err
		}
	}
	for _, p := range f.priorities {
		k, v, ok := strings.Cut(p, "=")
		impact, urgency, ok2 := strings.Cut(v, "/")
		sev, err := steward.ParseSeverity(k)
		if !ok || !ok2 || err != nil {
			return fmt.Errorf("--priority %q: want SEVERITY=IMPACT/URGENCY, e.g. High=1/2", p)
		}
		if req.Priority == nil {
			req.Priority = steward.DefaultPriority()
		}
		req.Priority[sev] = steward.ImpactUrgency{Impact: impact, Urgency: urgency}
	}
	return nil
}

func newIntegrationsCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "integrations", Aliases: []string{"integration"}, Short: "Connect and manage ServiceNow instances"}

	var cf integrationFlags
	create := &cobra.Command{
		Use:   "create --name N --scope S --instance-url URL --username U (--password-file F) [--client-id ID --client-secret-file F]",
		Short: "Add a ServiceNow integration (its connection is checked first)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			req, err := cf.request(cmd)
			if err != nil {
				return err
			}
			var hooks *emulatorWebhooks
			if cf.emulatorWebhooks {
				if hooks, err = prepareEmulatorWebhooks(cmd.Context(), &req); err != nil {
					return err
				}
			}
			in, err := c.CreateIntegration(cmd.Context(), req)
			if err != nil {
				return err
			}
			if hooks != nil {
				if err := hooks.register(cmd.Context(), c, in.ID, g.stderr); err != nil {
					return err
				}
			}
			return g.render(in, func(w *tabwriter.Writer) { integrationTable(w, []steward.Integration{*in}) })
		},
	}
	cf.add(create)
	create.Flags().BoolVar(&cf.emulatorWebhooks, "emulator-webhooks", false,
		"for the built-in emulator: generate a webhook secret and have the emulator post its changes to this integration (admin API as STEWARD_SNOW_ADMIN_USER/STEWARD_SNOW_ADMIN_PASSWORD, default admin/admin)")

	var uf integrationFlags
	update := &cobra.Command{
		Use:   "update ID [flags]",
		Short: "Change an integration (changed connection settings are checked again)",
		Args:  argsFor("the integration ID (see 'steward integrations list')"),
		RunE: g.withID(func(cmd *cobra.Command, c *apiclient.Client, id int64) error {
			cur, err := c.GetIntegration(cmd.Context(), id)
			if err != nil {
				return err
			}
			// Mapping flags change only what they name: start from what is stored.
			uf.current = &cur.Integration
			req, err := uf.request(cmd)
			if err != nil {
				return err
			}
			in, err := c.UpdateIntegration(cmd.Context(), id, req)
			if err != nil {
				return err
			}
			return g.render(in, func(w *tabwriter.Writer) { integrationTable(w, []steward.Integration{*in}) })
		}),
	}
	uf.add(update)

	list := &cobra.Command{Use: "list", Short: "List integrations", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := g.client()
			if err != nil {
				return err
			}
			page, err := c.ListIntegrations(cmd.Context())
			if err != nil {
				return err
			}
			return g.render(page, func(w *tabwriter.Writer) { integrationTable(w, page.Items) })
		}}

	show := &cobra.Command{Use: "show ID", Short: "Show an integration", Args: argsFor("the integration ID (see 'steward integrations list')"),
		RunE: g.withID(func(cmd *cobra.Command, c *apiclient.Client, id int64) error {
			in, err := c.GetIntegration(cmd.Context(), id)
			if err != nil {
				return err
			}
			return g.render(in, func(w *tabwriter.Writer) {
				row(w, "ID:", in.ID)
				row(w, "Name:", in.Name)
				row(w, "State:", in.State)
				row(w, "Scope:", in.Scope)
				row(w, "Instance:", in.InstanceURL)
				row(w, "Auth:", fmt.Sprintf("%s (user %s, client %s; password set: %t, client secret set: %t)",
					in.AuthMode, orDash(in.Username), orDash(in.ClientID), in.HasPassword, in.HasClientSecret))
				row(w, "Rate limit:", fmt.Sprintf("%g requests/s", in.RequestsPerSecond))
				row(w, "Sync:", fmt.Sprintf("poll every %s, reconcile every %s, closed-not-fixed: %s, deleted ticket: %s",
					time.Duration(in.Sync.PollInterval), time.Duration(in.Sync.ReconcileInterval), in.Sync.ClosedNotFixed, in.Sync.DeletedTicket))
				for _, tt := range steward.TicketTypes {
					m := in.TicketTypes[tt]
					row(w, string(tt)+":", fmt.Sprintf("table %s, fixed fields %v", orDash(m.Table), m.Fields))
				}
				if p := in.PendingDelete; p != nil {
					row(w, "Deleting:", fmt.Sprintf("%d active assignments left", p.ActiveAssignments))
				}
			})
		})}

	validate := &cobra.Command{Use: "validate ID", Short: "Check an integration's connection now", Args: argsFor("the integration ID (see 'steward integrations list')"),
		RunE: g.withID(func(cmd *cobra.Command, c *apiclient.Client, id int64) error {
			if err := c.ValidateIntegration(cmd.Context(), id); err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "integration %d: connection OK\n", id)
			return nil
		})}

	var yes bool
	del := &cobra.Command{Use: "delete ID", Short: "Delete an integration and remove its assignments (kept in history)", Args: argsFor("the integration ID (see 'steward integrations list')"),
		RunE: g.withID(func(cmd *cobra.Command, c *apiclient.Client, id int64) error {
			p, err := c.IntegrationDeletePreview(cmd.Context(), id)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "Deleting integration %d removes %d active assignments (%d tickets, %d still open; the tickets stay in ServiceNow).\n",
				id, p.ActiveAssignments, p.Tickets, p.OpenTickets)
			if !yes {
				return fmt.Errorf("nothing deleted; repeat with --yes to confirm")
			}
			if _, err := c.DeleteIntegration(cmd.Context(), id); err != nil {
				return err
			}
			for {
				in, err := c.GetIntegration(cmd.Context(), id)
				if apiErr, ok := err.(*apiclient.Error); ok && apiErr.Status == 404 {
					fmt.Fprintf(g.stdout, "integration %d deleted\n", id)
					return nil
				}
				if err != nil {
					return err
				}
				if in.PendingDelete != nil {
					fmt.Fprintf(g.stderr, "  %d assignments left to remove\n", in.PendingDelete.ActiveAssignments)
				}
				select {
				case <-cmd.Context().Done():
					return fmt.Errorf("stopped following; the delete goes on on the server")
				case <-time.After(500 * time.Millisecond):
				}
			}
		})}
	del.Flags().BoolVar(&yes, "yes", false, "confirm the delete")

	cmd.AddCommand(create, list, show, update, validate, del)
	return cmd
}

func integrationTable(w *tabwriter.Writer, items []steward.Integration) {
	row(w, "ID", "NAME", "STATE", "SCOPE", "INSTANCE", "AUTH")
	for _, in := range items {
		row(w, in.ID, in.Name, in.State, in.Scope, in.InstanceURL, in.AuthMode)
	}
}

// deferredUntil is when a ticket a rule's daily cap deferred will be sent,
// "" for any other ticket.
func deferredUntil(t *steward.Ticket) string {
	if t.Status != steward.TicketDeferred || t.DeferredUntil == nil {
		return ""
	}
	return t.DeferredUntil.UTC().Format("2006-01-02 15:04 UTC")
}

func newTicketsCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "tickets", Short: "List tickets and retry failed ones"}
	list := &cobra.Command{Use: "list", Short: "List tickets with number, link, state and assignee", Args: cobra.NoArgs}
	lf := addListFlags(list, "integration", "type", "state", "status", "recommendation", "owner")
	list.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := g.client()
		if err != nil {
			return err
		}
		page, err := c.ListTickets(cmd.Context(), lf.values())
		if err != nil {
			return err
		}
		return g.render(page, func(w *tabwriter.Writer) {
			row(w, "ASSIGNMENT", "NUMBER", "STATUS", "STATE", "ASSIGNEE", "RESOURCE", "RECOMMENDATION", "LINK")
			for _, t := range page.Items {
				state := string(t.State)
				if t.StateLabel != "" {
					state = t.StateLabel
				}
				status := string(t.Status)
				if until := deferredUntil(&t.Ticket); until != "" {
					status += " until " + until
				}
				row(w, t.AssignmentID, orDash(t.Number), status, orDash(state), orDash(t.AssigneeEmail), t.ResourceID, clip(t.RecommendationKey, 40), orDash(t.Link))
			}
			w.Flush()
			ticketReasons(g.stdout, page.Items)
			nextHint(g.stdout, page.NextCursor)
		})
	}
	retry := &cobra.Command{Use: "retry ASSIGNMENT_ID", Short: "Queue a failed ticket creation again", Args: argsFor("the assignment ID of the ticket (the ASSIGNMENT column of 'steward tickets list')"),
		RunE: g.withID(func(cmd *cobra.Command, c *apiclient.Client, id int64) error {
			t, err := c.RetryTicket(cmd.Context(), id)
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stdout, "ticket of assignment %d queued again (%s)\n", id, t.Status)
			return nil
		})}
	cmd.AddCommand(list, retry, newTicketsShowCommand(g))
	return cmd
}

func newAuditCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "List audit events of integrations and tickets, newest first", Args: cobra.NoArgs}
	lf := addListFlags(cmd, "integration", "assignment", "action")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		c, err := g.client()
		if err != nil {
			return err
		}
		page, err := c.ListAudit(cmd.Context(), lf.values())
		if err != nil {
			return err
		}
		return g.render(page, func(w *tabwriter.Writer) {
			row(w, "WHEN", "WHO", "ACTION", "INTEGRATION", "ASSIGNMENT", "DETAILS")
			for _, e := range page.Items {
				row(w, e.At.UTC().Format(time.RFC3339), e.Actor, e.Action, idOrDash(e.IntegrationID), idOrDash(e.AssignmentID), keyValues(e.Details))
			}
			w.Flush()
			nextHint(g.stdout, page.NextCursor)
		})
	}
	return cmd
}

func idOrDash(id int64) string {
	if id == 0 {
		return "-"
	}
	return strconv.FormatInt(id, 10)
}
