// Package servicenow is the ServiceNow Table API implementation of
// itsm.Provider. It follows shared/reference/servicenow-api.md; comments
// cite its sections (§n).
//
// # Requests
//
// Every request asks for JSON (Accept, Content-Type), names the fields it
// reads (sysparm_fields, with assigned_to.email dot-walked so a sync needs
// no user lookups) and drops reference links
// (sysparm_exclude_reference_link=true). Answers are size-capped. A
// non-2xx answer's error envelope is decoded into an *itsm.Error keeping
// the message, detail, status and X-Transaction-ID (§2.2). A body holding
// both result and error, or anything that is not the JSON envelope, is
// itsm.KindBadResponse (§7.3).
//
// # Authentication
//
// OAuth password grant (the default with a client ID), client
// credentials, or Basic (§1). Tokens come from <instance>/oauth_token.do
// with the client credentials in the form body, are shared by all
// requests of a Client, refreshed ahead of expiry (60 s, or a quarter of
// a short lifetime) and, when the API still answers 401, renewed once and
// the request resent once. An expired refresh token falls back to the
// password grant. The client keeps no cookies (§0, session serialization)
// and follows no redirects.
//
// # Where it connects
//
// With Config.Policy set (Steward's factory always sets it) every
// connection passes the netpolicy outbound policy, checked on the address
// being dialled, and no proxy is used. A redirect is reported with its
// target's host only, so credentials never travel on to another host.
// Validation messages explain failures in fixed words and never repeat
// the instance's own error text: an instance URL is user input, and
// validation must not relay whatever a server at it answers.
//
// # Retries and idempotency
//
// 429 (honouring Retry-After), 500, 502, 503, 504, 202 (§0) and network
// failures are retried with exponential backoff and jitter, up to
// Config.MaxRetries, never past the caller's deadline; a Retry-After
// longer than Config.MaxRetryDelay is handed back in the error for the job
// queue to wait. 4xx data errors are never retried. Creating is not
// idempotent on the wire (§2.6), so a POST is resent directly only after a
// 429 or when the request never left; after any ambiguous failure the
// client first looks the correlation ID up. See Client.CreateTicket for the
// request budget and itsm.CreateRequest.FirstAttempt.
//
// # Rate limit
//
// Every attempt first waits for the client's Limiter: by default an
// in-process token bucket of Config.RequestsPerSecond and Config.Burst.
// WithLimiter replaces it, e.g. by a budget several processes share
// through their database (Steward on PostgreSQL). A shared limiter that
// is also a Delayer is told of every 429's Retry-After (up to
// Config.MaxRetryDelay), so that all its users back off, not only the
// client that was answered.
//
// # Paging
//
// Batch reads (Tickets, FindByCorrelationIDs) page by offset until
// X-Total-Count is reached, or until an empty page when the count is
// missing, never stopping on a short page (§2.5). ChangedSince pages by
// keyset on (sys_updated_on, sys_id), which cannot skip a record updated
// while it runs.
package servicenow
