// Package snowemu is an in-memory stand-in for a ServiceNow instance, used
// by tests, demos and benchmarks of Steward's ServiceNow integration.
//
// It implements the inbound REST surface described in
// shared/reference/servicenow-api.md ("the reference"; section numbers
// below are its sections) and the outbound webhook pattern of §8.1. It
// imports only the standard library, never another Steward package, so a
// misreading of the API shared by our client and the emulator cannot hide:
// the emulator is written from the reference, the client is tested against
// it.
//
// # Use
//
//	emu := snowemu.New(snowemu.Options{}, logger)
//	defer emu.Close()
//	srv := httptest.NewServer(emu) // or http.ListenAndServe(addr, emu)
//
// An Emulator is an http.Handler serving:
//
//   - POST /oauth_token.do: password, refresh_token and (behind
//     Options.ClientCredentials) client_credentials grants, form-encoded only
//     (§1.2).
//   - /api/now/table/{table}[/{sys_id}], also under /api/now/v1/ and
//     /api/now/v2/: GET (list and one), HEAD, POST, PUT, PATCH, DELETE and
//     X-http-method-override (§2). Tables: incident, problem, change_request,
//     sys_user, sys_user_group, sys_user_grmember, and the read-only
//     sys_journal_field and sys_audit, populated by writes (§8.2, §8.3).
//   - /emulator/admin/...: an admin API (Basic auth with the admin
//     credentials) for agent actions, faults, webhooks, rate limits, users
//     and request counts; see handleAdmin in admin.go for the routes and JSON
//     shapes.
//   - GET /: a read-only HTML page listing the latest records, refreshed
//     every 5 s, without authentication; each number links to the record's
//     page, GET /<table>.do?sys_id=<id> and GET /nav_to.do?uri=<table>.do?sys_id=<id>
//     (the links Steward puts on tickets): fields, state, assignee, work
//     notes and history, or a 404 page.
//
// Authentication is Basic (sys_user user_name + password), Bearer (tokens
// from /oauth_token.do) or, when Options.APIKeys is set, x-sn-apikey (§1).
// New seeds the admin user (Options.AdminUser/AdminPassword, default
// admin/admin) and, unless Options.NoSeed, the DemoUsers (fred.luddy,
// david.loo, beth.anglin, don.goodliffe, abel.tuter and svc.steward, each
// <user_name>@example.com except svc.steward, with the password
// DefaultUserPassword) and the groups Service Desk, Cloud Security and
// Network. Seed sys_ids are derived from names, so they are stable across
// runs.
//
// # Behaviour
//
// Records carry every dictionary field, as strings, "" when empty, dates in
// UTC yyyy-MM-dd HH:mm:ss (§0, §4). Task records get numbers INC0010001,
// PRB0040001, CHG0030001 onwards, sys_mod_count, sys_created_*/sys_updated_*
// (user_name of the caller), opened_by/opened_at, a priority computed from
// impact × urgency (incident and problem), and the state models of §5:
// resolving or closing an incident needs close_code and close_notes (403
// Data Policy Exception otherwise); problem and change_request states
// follow the transition graphs of §5.2/§5.3 (approvals gate Assess and
// Authorize; closing a change needs close_code and close_notes). Writes to
// work_notes/comments append sys_journal_field rows and read back "";
// every changed field gets a sys_audit row. Writes that change nothing do
// not bump sys_mod_count.
//
// Queries implement the encoded query language of §3 (operators of the
// §3.2 minimum set plus SAMEAS, NSAMEAS, ON, NOTON, RELATIVEGT/LT and the
// "Me" DYNAMIC filter; ^OR, ^NQ, ORDERBY/ORDERBYDESC, one-level dot-walk,
// the javascript: date helpers of §3.3), name=value filters, sysparm_fields
// with dot-walk keys, display values (§2.4), paging headers exactly as
// observed (§2.5) and sysparm_input_display_value.
// Lists are planned (plan.go) without changing any result: "field=v" and
// "fieldINv1,..." terms on sys_id and the indexed lookup fields are answered
// from case-folded indexes, and ORDERBY on plain fields reads a sorted view
// kept across requests, bounded by range terms on its first key.
//
// Inserts and updates of incident, problem and change_request (and agent
// deletes) are posted to every registered Webhook after the write commits,
// with the body the reference's example business rule composes, signed in
// X-Signature-SHA256 = base64(HMAC-SHA256(secret, body)), User-Agent
// ServiceNow/1.0, at most once.
//
// # Switches for [uncertain] behaviour
//
// Every behaviour the reference marks [uncertain] is an Options field whose
// zero value is the reference's suggested default:
//
//   - InvalidQueryReturnsNoRows (§3.5, glide.invalid_query.returns_no_rows):
//     false ignores invalid query terms.
//   - CaseSensitiveMatching (§3.6): false compares strings case-insensitively.
//   - StrictPaging (§2.5): false sends rel="prev" with a negative offset on
//     the first page, as observed; rel="next" is omitted on the last page in
//     both modes.
//   - BlockedTransitions (§5.2, §5.3): TransitionUnchanged answers 200 with
//     the state left unchanged; TransitionForbidden answers 403.
//   - StrictOnHold (§5.1 rule 3) and StrictClosedIncidents (§5.1 rule 5):
//     off, so such writes are accepted.
//   - RateLimitRemainingHeader (§7.1): off; X-RateLimit-Remaining is not a
//     documented ServiceNow header.
//   - UnknownURIStatus (§2.2): 400.
//   - ClientCredentials (§1.2): off, like the instance property.
//
// Other [uncertain] points are fixed to the reference's suggestion: the two
// 401 texts (missing vs wrong credentials; bearer failures use the first),
// 400 {"error":"invalid_request",...} for malformed token requests, the
// refresh grant returning the same refresh token, empty references as
// {"display_value":"","value":""} with sysparm_display_value=all, journal
// fields rendering "" in every display mode, payload-too-large as 400,
// unknown body fields ignored, choice values not validated, and reference
// values that are not sys_ids stored as given.
//
// # Test and demo hooks
//
// Go methods drive the instance as agents would: SetState, Reassign,
// AddWorkNote, AddComment, DeleteRecord, Create and Update, each recorded as
// a given user. Count, Records, Record, FindByCorrelationID, UserID,
// Requests and TotalRequests inspect it; Reset, ExpireTokens, RevokeTokens,
// SetFaults (latency, 500/503, dropped connections, drop-after-commit, 429
// storms, slow bodies; deterministic with Options.Seed) and SetRateLimits
// (§7.1 precedence) change it. Save/Load and Options.DataFile persist it as
// JSON.
package snowemu
