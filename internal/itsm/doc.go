// Package itsm is the seam between Steward and an IT service management
// system: one [Provider] per configured integration, the records it returns
// ([Ticket], [User]), the typed [Error] every implementation returns, the
// normalized state contract ([NormalizeState], [RawState]) and small HTTP
// helpers shared by implementations ([RedactURL], [ParseRetryAfter],
// [RetryableStatus]).
//
// # Architecture
//
// Packages that create and sync tickets (ticketsync, api) depend on this
// package only. cmd/steward wires a factory from an integration to a
// concrete Provider (today only internal/itsm/servicenow), so no caller
// imports an implementation. internal/itsm/itsmtest holds the shared test
// kit every implementation must pass.
//
// # Error handling
//
// Every Provider method returns a *[Error] on failure. Its Kind says what
// went wrong; Retryable says whether the same call may succeed later and
// RetryAfter how long the ITSM asked to wait. An *Error also unwraps to a
// *steward.Error, so steward.ErrorCode and steward.ErrorMessage work on it
// (e.g. a deleted ticket is steward.CodeNotFound). Errors never hold
// credentials, tokens or URLs with query strings.
//
// # Tables and states
//
// A ticket lives in a table (ServiceNow: incident, problem, change_request
// or a table extending them). Each table has its own raw state values;
// [NormalizeState] maps them onto steward.TicketState and [RawState] back.
package itsm
