// Package apiclient is a Go client for Steward's /api/v1. The CLI's client
// verbs and the end-to-end tests use it, so the API is exercised the way
// users call it.
package apiclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/stewardhq/steward"
)

// Client talks to one Steward server.
type Client struct {
	base  *url.URL
	http  *http.Client
	token string
}

// New returns a client for the server at baseURL (e.g. http://127.0.0.1:8080)
// that authenticates with the API token token (sent as a bearer token; the
// server records the token's name in histories).
func New(baseURL, token string) (*Client, error) {
	u, err := url.Parse(strings.TrimRight(baseURL, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("server URL %q must look like http://host:port", baseURL)
	}
	return &Client{base: u, http: &http.Client{Timeout: 5 * time.Minute}, token: token}, nil
}

// Token is the API token the client sends.
func (c *Client) Token() string { return c.token }

// WithHTTPClient makes the client use hc (e.g. to trust a test CA).
func (c *Client) WithHTTPClient(hc *http.Client) *Client {
	c.http = hc
	return c
}

// Error is an error answer from the server, in its one JSON error shape.
type Error struct {
	Status  int
	Code    string
	Message string
	// Field names the request field the error is about, when the server
	// said.
	Field string
}

func (e *Error) Error() string {
	if e.Code == "" {
		return fmt.Sprintf("server answered %d", e.Status)
	}
	return fmt.Sprintf("%s (%s)", e.Message, e.Code)
}

// Page is one page of a list.
type Page[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

// RecommendationSummary is a recommendation with its assessment counts.
type RecommendationSummary struct {
	steward.Recommendation
	Unhealthy     int `json:"unhealthy"`
	Healthy       int `json:"healthy"`
	NotApplicable int `json:"not_applicable"`
}

// RecommendationDetail is a recommendation with a page of affected resources.
type RecommendationDetail struct {
	RecommendationSummary
	Affected Page[steward.Assessment] `json:"affected"`
}

// ApplyResult counts what an ingest changed.
type ApplyResult struct {
	Observations           int     `json:"observations"`
	AssessmentsCreated     int     `json:"assessments_created"`
	StatusChanged          int     `json:"status_changed"`
	Unchanged              int     `json:"unchanged"`
	ResourcesCreated       int     `json:"resources_created"`
	RecommendationsCreated int     `json:"recommendations_created"`
	CompletedAssignments   []int64 `json:"completed_assignments"`
	// RuleAssignments and RuleSkipped say what governance rules did.
	RuleAssignments        int            `json:"rule_assignments"`
	RuleSkipped            map[string]int `json:"rule_skipped"`
	ChangedRecommendations []string       `json:"changed_recommendations"`
}

// Import is an uploaded findings file and its processing state.
type Import struct {
	ID         int64       `json:"id"`
	Format     string      `json:"format"`
	Filename   string      `json:"filename"`
	Size       int64       `json:"size"`
	State      string      `json:"state"`
	Error      string      `json:"error"`
	Result     ApplyResult `json:"result"`
	CreatedBy  string      `json:"created_by"`
	CreatedAt  time.Time   `json:"created_at"`
	StartedAt  *time.Time  `json:"started_at"`
	FinishedAt *time.Time  `json:"finished_at"`
	Progress   *struct {
		Phase   string `json:"phase"`
		Records int    `json:"records"`
		// RecordsTotal is the file's record count, known while applying.
		RecordsTotal int   `json:"records_total"`
		BytesRead    int64 `json:"bytes_read"`
		BytesTotal   int64 `json:"bytes_total"`
	} `json:"progress"`
}

// AssignmentDetail is an assignment with its history; the API's own type.
type AssignmentDetail = steward.AssignmentDetail

// AssignmentRequest creates or changes an assignment; see the API's
// AssignmentCreate and AssignmentUpdate schemas. Zero fields are omitted.
type AssignmentRequest struct {
	AssessmentID             int64  `json:"assessment_id,omitempty"`
	Owner                    string `json:"owner,omitempty"`
	RemediationTimeframeDays int    `json:"remediation_timeframe_days,omitempty"`
	DueDate                  string `json:"due_date,omitempty"`
	GracePeriod              *bool  `json:"grace_period,omitempty"`
	ETA                      string `json:"eta,omitempty"`
	ETAJustification         string `json:"eta_justification,omitempty"`
	OwnerEmailOptOut         *bool  `json:"owner_email_opt_out,omitempty"`
	ManagerEmailOptOut       *bool  `json:"manager_email_opt_out,omitempty"`
	Reason                   string `json:"reason,omitempty"`

	// For type servicenow.
	Type             string `json:"type,omitempty"`
	IntegrationID    int64  `json:"integration_id,omitempty"`
	TicketType       string `json:"ticket_type,omitempty"`
	AssignedTo       string `json:"assigned_to,omitempty"`
	Caller           string `json:"caller,omitempty"`
	ShortDescription string `json:"short_description,omitempty"`
	Description      string `json:"description,omitempty"`
}

// ListRecommendations lists recommendations; q holds the API's filters.
func (c *Client) ListRecommendations(ctx context.Context, q url.Values) (*Page[RecommendationSummary], error) {
	var out Page[RecommendationSummary]
	return &out, c.do(ctx, http.MethodGet, "/api/v1/recommendations", q, nil, &out)
}

// GetRecommendation returns one recommendation and a page of affected resources.
func (c *Client) GetRecommendation(ctx context.Context, key string, q url.Values) (*RecommendationDetail, error) {
	var out RecommendationDetail
	return &out, c.do(ctx, http.MethodGet, "/api/v1/recommendations/"+url.PathEscape(key), q, nil, &out)
}

// ListAssessments lists assessments.
func (c *Client) ListAssessments(ctx context.Context, q url.Values) (*Page[steward.Assessment], error) {
	var out Page[steward.Assessment]
	return &out, c.do(ctx, http.MethodGet, "/api/v1/assessments", q, nil, &out)
}

// GetAssessment returns one assessment.
func (c *Client) GetAssessment(ctx context.Context, id int64) (*steward.Assessment, error) {
	var out steward.Assessment
	return &out, c.do(ctx, http.MethodGet, "/api/v1/assessments/"+strconv.FormatInt(id, 10), nil, nil, &out)
}

// ListResources lists resources.
func (c *Client) ListResources(ctx context.Context, q url.Values) (*Page[steward.Resource], error) {
	var out Page[steward.Resource]
	return &out, c.do(ctx, http.MethodGet, "/api/v1/resources", q, nil, &out)
}

// PostAssessments sends a Steward JSON batch (the body as-is).
func (c *Client) PostAssessments(ctx context.Context, body io.Reader) (*ApplyResult, error) {
	var out struct {
		Result ApplyResult `json:"result"`
	}
	return &out.Result, c.do(ctx, http.MethodPost, "/api/v1/assessments", nil, rawJSON{body}, &out)
}

// UploadImport streams a findings file to the server; format may be empty
// to let the server detect it. size is the body's length, or -1 when it is
// not known (the body is then sent chunked).
func (c *Client) UploadImport(ctx context.Context, body io.Reader, size int64, filename, format string) (*Import, error) {
	q := url.Values{}
	if filename != "" {
		q.Set("filename", filename)
	}
	if format != "" {
		q.Set("format", format)
	}
	req, err := c.newRequest(ctx, http.MethodPost, "/api/v1/imports", q, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	var out Import
	return &out, c.send(req, &out)
}

// GetImport returns an import with its progress.
func (c *Client) GetImport(ctx context.Context, id int64) (*Import, error) {
	var out Import
	return &out, c.do(ctx, http.MethodGet, "/api/v1/imports/"+strconv.FormatInt(id, 10), nil, nil, &out)
}

// ListImports lists uploaded findings files, newest first; q holds the
// API's cursor and limit.
func (c *Client) ListImports(ctx context.Context, q url.Values) (*Page[Import], error) {
	var out Page[Import]
	return &out, c.do(ctx, http.MethodGet, "/api/v1/imports", q, nil, &out)
}

// CreateAssignment assigns an unhealthy assessment.
func (c *Client) CreateAssignment(ctx context.Context, req AssignmentRequest) (*steward.Assignment, error) {
	var out steward.Assignment
	return &out, c.do(ctx, http.MethodPost, "/api/v1/assignments", nil, req, &out)
}

// UpdateAssignment changes an active assignment.
func (c *Client) UpdateAssignment(ctx context.Context, id int64, req AssignmentRequest) (*steward.Assignment, error) {
	var out steward.Assignment
	return &out, c.do(ctx, http.MethodPatch, "/api/v1/assignments/"+strconv.FormatInt(id, 10), nil, req, &out)
}

// DeleteAssignment ends an assignment as removed.
func (c *Client) DeleteAssignment(ctx context.Context, id int64, reason string) (*steward.Assignment, error) {
	q := url.Values{}
	if reason != "" {
		q.Set("reason", reason)
	}
	var out steward.Assignment
	return &out, c.do(ctx, http.MethodDelete, "/api/v1/assignments/"+strconv.FormatInt(id, 10), q, nil, &out)
}

// GetAssignment returns an assignment with its history.
func (c *Client) GetAssignment(ctx context.Context, id int64) (*AssignmentDetail, error) {
	var out AssignmentDetail
	return &out, c.do(ctx, http.MethodGet, "/api/v1/assignments/"+strconv.FormatInt(id, 10), nil, nil, &out)
}

// ListAssignments lists assignments.
func (c *Client) ListAssignments(ctx context.Context, q url.Values) (*Page[steward.Assignment], error) {
	var out Page[steward.Assignment]
	return &out, c.do(ctx, http.MethodGet, "/api/v1/assignments", q, nil, &out)
}

// rawJSON marks a body that is already JSON.
type rawJSON struct{ r io.Reader }

func (c *Client) do(ctx context.Context, method, path string, q url.Values, body, out any) error {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case rawJSON:
		r = b.r
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		r = bytes.NewReader(buf)
	}
	req, err := c.newRequest(ctx, method, path, q, r)
	if err != nil {
		return err
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.send(req, out)
}

func (c *Client) newRequest(ctx context.Context, method, path string, q url.Values, body io.Reader) (*http.Request, error) {
	// path arrives escaped, so a key holding "/" stays one path segment.
	u := *c.base
	u.RawPath = c.base.EscapedPath() + path
	unescaped, err := url.PathUnescape(u.RawPath)
	if err != nil {
		return nil, fmt.Errorf("bad request path %q: %w", path, err)
	}
	u.Path = unescaped
	if len(q) > 0 {
		u.RawQuery = q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	return req, nil
}

func (c *Client) send(req *http.Request, out any) error {
	body, err := c.roundTrip(req)
	if err != nil {
		return err
	}
	defer body.Close()
	if out == nil {
		return nil
	}
	if err := json.NewDecoder(body).Decode(out); err != nil {
		return fmt.Errorf("decode %s %s answer: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// roundTrip sends req and returns a success's body, which the caller
// closes; a failure is the server's JSON error as an *Error.
func (c *Client) roundTrip(req *http.Request) (io.ReadCloser, error) {
	resp, err := c.http.Do(req)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return nil, fmt.Errorf("cannot reach Steward at %s (connection refused): is 'steward serve' running there? Set --server or STEWARD_SERVER: %w", c.base, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		var body struct {
			Error struct {
				Code    string `json:"code"`
				Message string `json:"message"`
				Field   string `json:"field"`
			} `json:"error"`
		}
		_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body)
		return nil, &Error{Status: resp.StatusCode, Code: body.Error.Code, Message: body.Error.Message, Field: body.Error.Field}
	}
	return resp.Body, nil
}

// IntegrationRequest creates or changes an integration. Nil fields are
// left out (PATCH leaves them unchanged).
type IntegrationRequest struct {
	Name              *string                                      `json:"name,omitempty"`
	Scope             *string                                      `json:"scope,omitempty"`
	InstanceURL       *string                                      `json:"instance_url,omitempty"`
	Local             *bool                                        `json:"local,omitempty"`
	AuthMode          *string                                      `json:"auth_mode,omitempty"`
	Username          *string                                      `json:"username,omitempty"`
	Password          *string                                      `json:"password,omitempty"`
	ClientID          *string                                      `json:"client_id,omitempty"`
	ClientSecret      *string                                      `json:"client_secret,omitempty"`
	WebhookSecret     *string                                      `json:"webhook_secret,omitempty"`
	TicketTypes       map[steward.TicketType]steward.TicketMapping `json:"ticket_types,omitempty"`
	Priority          map[steward.Severity]steward.ImpactUrgency   `json:"priority,omitempty"`
	RequestsPerSecond *float64                                     `json:"requests_per_second,omitempty"`
	Sync              *steward.SyncSettings                        `json:"sync,omitempty"`
	SkipValidation    bool                                         `json:"skip_validation,omitempty"`
}

// IntegrationDetail is an integration with what is left to remove while it
// is being deleted.
type IntegrationDetail struct {
	steward.Integration
	PendingDelete *DeletePreview `json:"pending_delete"`
}

// DeletePreview says what deleting an integration removes.
type DeletePreview struct {
	ActiveAssignments int `json:"active_assignments"`
	Tickets           int `json:"tickets"`
	OpenTickets       int `json:"open_tickets"`
}

// TicketView is a ticket with its assignment's owner, resource and
// recommendation; the API's own type.
type TicketView = steward.TicketView

// CreateIntegration adds an integration (validated by the server first
// unless req.SkipValidation).
func (c *Client) CreateIntegration(ctx context.Context, req IntegrationRequest) (*steward.Integration, error) {
	var out steward.Integration
	return &out, c.do(ctx, http.MethodPost, "/api/v1/integrations", nil, req, &out)
}

// UpdateIntegration changes an integration.
func (c *Client) UpdateIntegration(ctx context.Context, id int64, req IntegrationRequest) (*steward.Integration, error) {
	var out steward.Integration
	return &out, c.do(ctx, http.MethodPatch, "/api/v1/integrations/"+strconv.FormatInt(id, 10), nil, req, &out)
}

// ListIntegrations lists every integration.
func (c *Client) ListIntegrations(ctx context.Context) (*Page[steward.Integration], error) {
	var out Page[steward.Integration]
	return &out, c.do(ctx, http.MethodGet, "/api/v1/integrations", nil, nil, &out)
}

// GetIntegration returns one integration.
func (c *Client) GetIntegration(ctx context.Context, id int64) (*IntegrationDetail, error) {
	var out IntegrationDetail
	return &out, c.do(ctx, http.MethodGet, "/api/v1/integrations/"+strconv.FormatInt(id, 10), nil, nil, &out)
}

// IntegrationDeletePreview says what deleting an integration would remove.
func (c *Client) IntegrationDeletePreview(ctx context.Context, id int64) (*DeletePreview, error) {
	var out DeletePreview
	return &out, c.do(ctx, http.MethodGet, "/api/v1/integrations/"+strconv.FormatInt(id, 10)+"/delete-preview", nil, nil, &out)
}

// DeleteIntegration starts deleting an integration.
func (c *Client) DeleteIntegration(ctx context.Context, id int64) (*steward.Integration, error) {
	var out steward.Integration
	return &out, c.do(ctx, http.MethodDelete, "/api/v1/integrations/"+strconv.FormatInt(id, 10), url.Values{"confirm": {"true"}}, nil, &out)
}

// ValidateIntegration checks a saved integration's connection now.
func (c *Client) ValidateIntegration(ctx context.Context, id int64) error {
	return c.do(ctx, http.MethodPost, "/api/v1/integrations/"+strconv.FormatInt(id, 10)+"/validate", nil, nil, nil)
}

// ListTickets lists tickets.
func (c *Client) ListTickets(ctx context.Context, q url.Values) (*Page[TicketView], error) {
	var out Page[TicketView]
	return &out, c.do(ctx, http.MethodGet, "/api/v1/tickets", q, nil, &out)
}

// GetTicket returns one ticket. Tickets have no ID of their own: id is
// the ticket's assignment ID.
func (c *Client) GetTicket(ctx context.Context, id int64) (*TicketView, error) {
	var out TicketView
	return &out, c.do(ctx, http.MethodGet, "/api/v1/tickets/"+strconv.FormatInt(id, 10), nil, nil, &out)
}

// RetryTicket queues a failed ticket creation again.
func (c *Client) RetryTicket(ctx context.Context, assignmentID int64) (*steward.Ticket, error) {
	var out steward.Ticket
	return &out, c.do(ctx, http.MethodPost, "/api/v1/assignments/"+strconv.FormatInt(assignmentID, 10)+"/ticket/retry", nil, nil, &out)
}

// ListAudit lists audit events, newest first.
func (c *Client) ListAudit(ctx context.Context, q url.Values) (*Page[steward.AuditEvent], error) {
	var out Page[steward.AuditEvent]
	return &out, c.do(ctx, http.MethodGet, "/api/v1/audit", q, nil, &out)
}

// SyncStatus is where an integration's synchronization with its ITSM
// stands: the last poll, reconcile and webhook, what runs now, the lag.
type SyncStatus struct {
	IntegrationID          int64      `json:"integration_id"`
	LastPollAt             *time.Time `json:"last_poll_at"`
	LastPollSuccessAt      *time.Time `json:"last_poll_success_at"`
	LastReconcileAt        *time.Time `json:"last_reconcile_at"`
	LastReconcileSuccessAt *time.Time `json:"last_reconcile_success_at"`
	LastWebhookAt          *time.Time `json:"last_webhook_at"`
	// Watermark is the sys_updated_on up to which polls have read.
	Watermark *time.Time `json:"watermark"`
	LastError string     `json:"last_error"`
	// Running names the sync running now ("poll", "reconcile"), or "".
	Running  string `json:"running"`
	Progress struct {
		Done  int `json:"done"`
		Total int `json:"total"`
	} `json:"progress"`
	LastReconcile ReconcileReport `json:"last_reconcile"`
	// LagSeconds is how far Steward's view may be behind the ITSM.
	LagSeconds float64 `json:"lag_seconds"`
	// WebhookURL is where the instance's business rule posts (docs/servicenow-setup.md §3).
	WebhookURL       string `json:"webhook_url"`
	HasWebhookSecret bool   `json:"has_webhook_secret"`
}

// ReconcileReport is what a full reconcile found and repaired.
type ReconcileReport struct {
	Checked  int      `json:"checked"`
	Repaired int      `json:"repaired"`
	Missing  int      `json:"missing"`
	Repairs  []string `json:"repairs"`
}

// SyncNow asks for an integration to be synchronized now (poll and full
// reconcile); it returns at once with the status as it was queued.
func (c *Client) SyncNow(ctx context.Context, id int64) (*SyncStatus, error) {
	var out SyncStatus
	return &out, c.do(ctx, http.MethodPost, "/api/v1/integrations/"+strconv.FormatInt(id, 10)+"/sync", nil, nil, &out)
}

// SyncStatus returns an integration's synchronization status.
func (c *Client) SyncStatus(ctx context.Context, id int64) (*SyncStatus, error) {
	var out SyncStatus
	return &out, c.do(ctx, http.MethodGet, "/api/v1/integrations/"+strconv.FormatInt(id, 10)+"/sync", nil, nil, &out)
}

// Me returns the token the client authenticates with, as the server sees it.
func (c *Client) Me(ctx context.Context) (*steward.Token, error) {
	var out steward.Token
	return &out, c.do(ctx, http.MethodGet, "/api/v1/me", nil, nil, &out)
}

// CreateToken creates an API token; the answer holds its secret, shown once.
func (c *Client) CreateToken(ctx context.Context, req steward.TokenCreate) (*steward.IssuedToken, error) {
	var out steward.IssuedToken
	return &out, c.do(ctx, http.MethodPost, "/api/v1/tokens", nil, req, &out)
}

// ListTokens lists every API token, revoked ones included.
func (c *Client) ListTokens(ctx context.Context) (*Page[steward.Token], error) {
	var out Page[steward.Token]
	return &out, c.do(ctx, http.MethodGet, "/api/v1/tokens", nil, nil, &out)
}

// RevokeToken revokes the token with id.
func (c *Client) RevokeToken(ctx context.Context, id int64) (*steward.Token, error) {
	var out steward.Token
	return &out, c.do(ctx, http.MethodDelete, "/api/v1/tokens/"+strconv.FormatInt(id, 10), nil, nil, &out)
}

// Overview returns the counts at a glance within the caller's scope.
func (c *Client) Overview(ctx context.Context) (*steward.Overview, error) {
	var out steward.Overview
	if err := c.do(ctx, http.MethodGet, "/api/v1/overview", nil, nil, &out); err != nil {
		return nil, err
	}
	return &out, nil
}
