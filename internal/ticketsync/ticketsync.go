// Package ticketsync opens and keeps ITSM tickets for assignments: it turns
// a user's request into an assignment plus a queued ticket_create job in one
// transaction, creates the record exactly once (correlation_id), and removes
// an integration's assignments in the background when it is deleted. It
// talks to ITSMs only through itsm.Provider, built by a factory the
// composition root supplies, so it never imports a concrete client.
package ticketsync

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/assignment"
	"github.com/stewardhq/steward/internal/itsm"
	"github.com/stewardhq/steward/internal/jobs"
	"github.com/stewardhq/steward/internal/store"
)

// ProviderFactory builds the provider of one integration from its settings
// and decrypted credentials.
type ProviderFactory func(in *steward.Integration, secrets store.IntegrationSecrets) (itsm.Provider, error)

// Config holds the service's settings.
type Config struct {
	// PublicURL is Steward's base URL as users reach it, for links in
	// ticket descriptions; empty leaves links out.
	PublicURL string
	// WebhookSecretGrace is how long a replaced webhook secret still
	// verifies deliveries, so none fail between changing the secret in
	// Steward and on the instance. Zero means DefaultWebhookSecretGrace;
	// negative means no grace at all.
	WebhookSecretGrace time.Duration
	// SyncBatch is how many changed tickets one Table API read and one
	// apply transaction take when refreshes are drained (webhooks, polls,
	// reconciles). Zero means DefaultSyncBatch; 1 is the naive path, one
	// read per changed ticket, which `steward bench` measures as the
	// baseline.
	SyncBatch int
}

// DefaultSyncBatch is the sys_idIN batch of a refresh: ServiceNow answers
// up to 100 records per page comfortably within its URL limits.
const DefaultSyncBatch = 100

// Service is safe for concurrent use.
type Service struct {
	cfg     Config
	db      *store.DB
	queue   *jobs.Queue
	factory ProviderFactory
	logger  *slog.Logger
	metrics *metrics
	// assign creates, changes and ends assignments; ticketsync is its
	// Ticketing (integration by scope, ticket text).
	assign *assignment.Service

	publicURL atomic.Pointer[string]

	mu        sync.Mutex
	providers map[int64]cachedProvider

	sync  *syncRuntime // sync.go
	drain *drainer     // sync_drain.go

}

// cachedProvider keeps one provider per integration so its rate limiter and
// token are shared by every worker; a changed integration gets a new one.
type cachedProvider struct {
	updatedAt time.Time
	provider  itsm.Provider
}

// New returns a Service. reg receives its metrics; nil registers none.
func New(cfg Config, db *store.DB, queue *jobs.Queue, factory ProviderFactory, logger *slog.Logger, reg prometheus.Registerer) *Service {
	s := &Service{cfg: cfg, db: db, queue: queue, factory: factory, logger: logger,
		metrics: newMetrics(reg), providers: map[int64]cachedProvider{}, sync: newSyncRuntime(reg), drain: newDrainer()}
	s.assign = assignment.New(queue, s)
	return s
}

// Assignments returns the assignment service, able to create
// ServiceNow-type assignments through this Service.
func (s *Service) Assignments() *assignment.Service { return s.assign }

// PublicURL is Steward's base URL for links, as configured or as set once
// the listener is bound.
func (s *Service) PublicURL() string {
	if p := s.publicURL.Load(); p != nil {
		return *p
	}
	return s.cfg.PublicURL
}

// SetPublicURL sets the base URL for links when it is only known after
// start (a listener on port 0).
func (s *Service) SetPublicURL(u string) { s.publicURL.Store(&u) }

// Provider returns the provider of an active integration.
func (s *Service) Provider(ctx context.Context, integrationID int64) (itsm.Provider, *steward.Integration, error) {
	in, err := s.db.FindIntegrationByID(ctx, integrationID)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	cached, ok := s.providers[in.ID]
	s.mu.Unlock()
	if ok && cached.updatedAt.Equal(in.UpdatedAt) {
		return cached.provider, in, nil
	}
	creds, err := s.db.FindIntegrationCredentials(ctx, in.ID)
	if err != nil {
		return nil, nil, err
	}
	if err := s.checkCredentialOrigin(ctx, in, creds.Origin); err != nil {
		return nil, nil, err
	}
	p, err := s.factory(in, creds.IntegrationSecrets)
	if err != nil {
		return nil, nil, fmt.Errorf("build provider for integration %d: %w", in.ID, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Callers that missed the cache together each built one: keep the
	// first, so every caller shares one provider and so one rate limiter.
	if cached, ok := s.providers[in.ID]; ok && cached.updatedAt.Equal(in.UpdatedAt) {
		return cached.provider, in, nil
	}
	s.providers[in.ID] = cachedProvider{updatedAt: in.UpdatedAt, provider: p}
	return p, in, nil
}

// Validate checks an integration's connection with candidate settings,
// before they are saved. origin is the origin the credentials were entered
// for (store.Origin); they are sent nowhere else.
func (s *Service) Validate(ctx context.Context, in *steward.Integration, secrets store.IntegrationSecrets, origin string) error {
	if err := s.checkCredentialOrigin(ctx, in, origin); err != nil {
		return err
	}
	p, err := s.factory(in, secrets)
	if err != nil {
		// The provider refuses settings it cannot connect with (e.g. an
		// instance address the outbound policy forbids).
		return atField("instance_url", err)
	}
	if err := p.Validate(ctx); err != nil {
		return &steward.Error{Code: steward.CodeInvalid, Message: "validation failed: " + validationMessage(err),
			Field: validationField(in, err), Err: err}
	}
	return nil
}

// checkCredentialOrigin refuses to use credentials entered for another
// origin than the integration's instance URL. UpdateIntegration already
// refuses such a change with a 400; this is the second line, against a bug
// or a row changed behind Steward's back, so the answer is an internal
// error and the credentials are not sent.
func (s *Service) checkCredentialOrigin(ctx context.Context, in *steward.Integration, origin string) error {
	want := store.Origin(in.InstanceURL)
	if want != "" && store.Origin(origin) == want {
		return nil
	}
	err := fmt.Errorf("integration %d: credentials entered for %q, instance URL origin is %q", in.ID, origin, want)
	s.logger.ErrorContext(ctx, "stored credentials not used: entered for another origin", "integration_id", in.ID, "err", err)
	return steward.WrapError(steward.CodeInternal, err, "the stored credentials of integration %d were entered for another instance; nothing was sent", in.ID)
}

func validationMessage(err error) string {
	if ierr, ok := errors.AsType[*itsm.Error](err); ok {
		if ierr.Kind == itsm.KindNotFound && ierr.Table == "sys_user" {
			// The Table API itself is missing: the URL is not a
			// ServiceNow instance's (or not its root).
			return fmt.Sprintf("the instance answered HTTP %d (not found) for ServiceNow's Table API: check that the instance URL is the root of a ServiceNow instance, like https://<instance>.service-now.com", ierr.Status)
		}
		return steward.ErrorMessage(ierr)
	}
	return steward.ErrorMessage(err)
}

// validationField names the integration setting a failed connection check
// points at, so a form shows the message there:
//
//   - refused credentials: password, or client_secret when the OAuth
//     client was refused (and always for client_credentials); an inactive
//     integration user: username; no OAuth endpoint: auth_mode;
//   - no usable answer (DNS, TLS, refused connection, timeout, the
//     outbound policy, a redirect, not a ServiceNow answer, the instance
//     down): instance_url;
//   - a table the user may not read or that does not exist: that ticket
//     type's table, ticket_types.<type>.table; the sys_user table:
//     username (the user lacks a role).
func validationField(in *steward.Integration, err error) string {
	ierr, ok := errors.AsType[*itsm.Error](err)
	if !ok {
		return "instance_url"
	}
	if ierr.Table == "" {
		// Several tables failed (joined): the first one names the field.
		if first, ok := errors.AsType[*itsm.Error](ierr.Err); ok && first != ierr {
			ierr = first
		}
	}
	switch ierr.Kind {
	case itsm.KindAuth:
		// Token endpoint failures carry no table; the user's own record
		// is read from sys_user.
		switch {
		case ierr.Table == "" && ierr.Status == http.StatusNotFound:
			return "auth_mode" // the instance has no OAuth endpoint
		case ierr.Table == "sys_user" && ierr.Status == 0:
			return "username" // the user is inactive
		case in.AuthMode == steward.AuthClientCredentials,
			strings.Contains(ierr.Message, "OAuth client ID or client secret"):
			return "client_secret"
		case in.AuthMode == steward.AuthOAuthPassword && ierr.Table == "sys_user":
			return "username" // a token was issued, but the user may not use the REST API
		}
		return "password"
	case itsm.KindForbidden, itsm.KindInvalidTable:
		if ierr.Table == "sys_user" {
			return "username"
		}
		if tt, ok := ticketTypeOfTable(in, ierr.Table); ok {
			return "ticket_types." + string(tt) + ".table"
		}
		return "ticket_types"
	}
	// Network, TLS, the outbound policy, redirects, answers that are not
	// ServiceNow's, 404s from a server without the Table API, an instance
	// that is down or rate limiting.
	return "instance_url"
}

// ticketTypeOfTable is the ticket type whose records go to table.
func ticketTypeOfTable(in *steward.Integration, table string) (steward.TicketType, bool) {
	for _, tt := range steward.TicketTypes {
		t := itsm.DefaultTable(tt)
		if m, ok := in.TicketTypes[tt]; ok && m.Table != "" {
			t = m.Table
		}
		if t == table {
			return tt, true
		}
	}
	return "", false
}

// AssignRequest asks for a ServiceNow-type assignment on an unhealthy
// assessment.
type AssignRequest struct {
	AssessmentID int64
	// IntegrationID picks the integration; 0 picks the one whose scope
	// holds the resource most specifically.
	IntegrationID int64
	TicketType    steward.TicketType
	// AssignedTo is the owner's e-mail; it becomes the ticket's assigned_to.
	AssignedTo string
	// Caller is the ticket's caller (incident) or requester (change).
	Caller string
	// ShortDescription and Description override the integration's templates.
	ShortDescription   string
	Description        string
	DueDate            time.Time
	GracePeriod        bool
	OwnerEmailOptOut   bool
	ManagerEmailOptOut bool
	Reason             string
}

// Assign creates the assignment and its pending ticket, and queues the
// ticket's creation, in one transaction (assignment.Service.Create): a
// crash either leaves nothing or leaves work that will run.
func (s *Service) Assign(ctx context.Context, req AssignRequest, actor string) (*steward.Assignment, error) {
	var a *steward.Assignment
	err := s.db.WithTx(ctx, func(tx *store.Tx) error {
		var err error
		a, err = s.assign.Create(ctx, tx, assignment.CreateRequest{
			AssessmentID:       req.AssessmentID,
			Type:               steward.AssignmentServiceNow,
			Owner:              req.AssignedTo,
			DueDate:            req.DueDate,
			GracePeriod:        req.GracePeriod,
			OwnerEmailOptOut:   req.OwnerEmailOptOut,
			ManagerEmailOptOut: req.ManagerEmailOptOut,
			Reason:             req.Reason,
			Ticket: &assignment.TicketRequest{IntegrationID: req.IntegrationID, Type: req.TicketType, Caller: req.Caller,
				ShortDescription: req.ShortDescription, Description: req.Description},
		}, actor)
		return err
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// CorrelationPrefix is the prefix every correlation ID of this installation
// starts with (assignment.CorrelationID makes them).
func CorrelationPrefix(installation string) string { return assignment.CorrelationPrefix(installation) }

// TicketRoute implements assignment.Ticketing: the integration that serves
// resourceID (chooseIntegration) and the table its mapping of typ names.
func (s *Service) TicketRoute(ctx context.Context, resourceID string, integrationID int64, typ steward.TicketType) (*steward.Integration, string, error) {
	in, err := s.chooseIntegration(ctx, resourceID, integrationID)
	if err != nil {
		return nil, "", err
	}
	table := in.TicketTypes[typ].Table
	if table == "" {
		table = itsm.DefaultTable(typ)
	}
	return in, table, nil
}

// TicketText implements assignment.Ticketing: the integration's templates
// for typ, rendered for a.
func (s *Service) TicketText(ctx context.Context, tx *store.Tx, in *steward.Integration, typ steward.TicketType, a *steward.Assignment) (string, string, error) {
	as, err := tx.FindAssessmentByID(ctx, a.AssessmentID)
	if err != nil {
		return "", "", err
	}
	data, err := s.templateData(ctx, tx, as, a)
	if err != nil {
		return "", "", err
	}
	return Render(in.TicketTypes[typ], data)
}

func (s *Service) templateData(ctx context.Context, tx *store.Tx, as *steward.Assessment, a *steward.Assignment) (TemplateData, error) {
	rec, err := tx.FindRecommendationByKey(ctx, as.RecommendationKey)
	if err != nil {
		return TemplateData{}, err
	}
	res, err := tx.FindResourceByID(ctx, as.ResourceID)
	if err != nil {
		return TemplateData{}, err
	}
	data := TemplateData{Recommendation: rec.Recommendation, Resource: *res, Assessment: *as, Assignment: *a}
	if base := s.PublicURL(); base != "" {
		data.Link = strings.TrimRight(base, "/") + "/api/v1/assignments/" + strconv.FormatInt(a.ID, 10)
	}
	return data, nil
}

// chooseIntegration returns the integration that serves resourceID: the
// requested one if its scope holds the resource, else the active one with
// the most specific scope holding it.
func (s *Service) chooseIntegration(ctx context.Context, resourceID string, id int64) (*steward.Integration, error) {
	all, err := s.db.FindIntegrations(ctx)
	if err != nil {
		return nil, err
	}
	var scopes []string
	var best *steward.Integration
	for _, in := range all {
		if in.State != steward.IntegrationActive {
			continue
		}
		scopes = append(scopes, fmt.Sprintf("%s (%s)", in.Scope, in.Name))
		if id != 0 {
			if in.ID != id {
				continue
			}
			if !in.Scope.Contains(resourceID) {
				return nil, steward.Errorf(steward.CodeInvalid, "resource %s is outside the scope %s of integration %q", resourceID, in.Scope, in.Name)
			}
			return in, nil
		}
		if in.Scope.Contains(resourceID) && (best == nil || len(in.Scope.Normalize()) > len(best.Scope.Normalize())) {
			best = in
		}
	}
	if id != 0 {
		return nil, steward.Errorf(steward.CodeNotFound, "integration %d not found or being deleted", id)
	}
	if best == nil {
		if len(scopes) == 0 {
			return nil, steward.Errorf(steward.CodeInvalid, "no integration exists; create one with POST /api/v1/integrations")
		}
		return nil, steward.Errorf(steward.CodeInvalid, "resource %s is outside the scope of every integration (scopes: %s)", resourceID, strings.Join(scopes, ", "))
	}
	return best, nil
}

// RetryTicket puts a failed ticket back in the queue. A member of a ticket
// group retries the group's shared ticket.
func (s *Service) RetryTicket(ctx context.Context, assignmentID int64, actor string) (*steward.Ticket, error) {
	var t *steward.Ticket
	err := s.db.WithTx(ctx, func(tx *store.Tx) error {
		a, err := tx.FindAssignmentByID(ctx, assignmentID)
		if err != nil {
			return err
		}
		holder := assignmentID
		if a.Ticket != nil {
			holder = a.Ticket.AssignmentID
		}
		if t, err = tx.ResetTicketForRetry(ctx, holder, actor); err != nil {
			return err
		}
		return s.queue.InsertTx(ctx, tx.SQL(), jobs.CreateTicketArgs{AssignmentID: holder, Retry: time.Now().UnixNano()})
	})
	return t, err
}
