// Package pull is the seam between Steward and the cloud security services
// it reads findings from on a schedule (Microsoft Defender for Cloud, AWS
// Security Hub, Google Security Command Center): a Puller reads one
// configured source and hands what it reads to a Sink, which the source
// runner (it records runs, applies observations in batches and marks gone
// findings) implements.
//
// # Contract
//
// A source's reach is split into units the provider reads as a whole: an
// Azure subscription, an AWS account in a region, a GCP project. For each
// unit a Puller calls Observe for every finding it reads, then exactly one
// of Done (the unit was read completely) or Failed (reading it failed part
// way). Units are independent: a unit's failure is reported with Failed and
// the Puller goes on with the next. Pull returns an error only for what
// stops the whole pull: the context, a credential that is refused before
// any unit is read, a Sink error.
//
// Done is the promise the "gone" rule rests on: everything the source knows
// about in the unit's scope was observed, so findings of this source in
// that scope that were not observed in this run are gone (the runner marks
// them Healthy). A Puller must not call Done for a unit it read only in
// part (a page failed, a filter narrowed it); it calls Failed instead, and
// nothing is marked gone there.
//
// Observations must pass steward.Observation.Validate; Recommendation.Source
// names the source kind's product (e.g. "defender", "securityhub", "scc").
// Errors meant for users (bad settings, refused credentials, throttling that
// outlasted the retries) are *steward.Error values whose message names the
// unit and the API page or request, never a secret.
//
// # Providers
//
// Each provider is a package under internal/source (defender, securityhub,
// scc) with the same shape, which the source runner's registry calls by
// kind:
//
//	type Settings struct{ ... }   // JSON, stored as is and shown by the API
//	func (s *Settings) Validate() error
//	type Secrets struct{ ... }    // secret.String fields: sealed, never shown
//	func (s Secrets) Validate(settings Settings) error
//	func New(settings Settings, secrets Secrets, env pull.Env) (pull.Puller, error)
//
// Settings may carry an endpoint override for a local test server (the
// emulators and tests): it is accepted only together with Local: true and a
// loopback address, like an integration's local instance, so credentials
// are never sent to a host a user picked.
package pull

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/stewardhq/steward"
)

// Env is what the runner gives a provider's New.
type Env struct {
	// HTTPClient sends the provider's requests through Steward's outbound
	// policy (internal/netpolicy); providers hand it to their SDK as its
	// transport.
	HTTPClient *http.Client
	Logger     *slog.Logger
	// Now is the clock (tests set it).
	Now func() time.Time
}

// Unit is one part of a source's reach that a pull reads as a whole.
type Unit struct {
	// ID is the provider's name for it: a subscription ID, an AWS account ID
	// and region ("123456789012/eu-west-1"), a GCP project ID.
	ID string
	// Scope is the part of Steward's resource tree the unit covers, e.g.
	// /subscriptions/<id>, /aws/accounts/<id>, /gcp/projects/<id>.
	Scope steward.Scope
}

// Sink receives what a pull reads. Its methods are called from one
// goroutine at a time.
type Sink interface {
	// Observe records one finding of unit. An error stops the pull; Pull
	// returns it.
	Observe(ctx context.Context, unit Unit, obs steward.Observation) error
	// ScopeTags records the tags of a container in the resource tree (a
	// subscription, resource group, account, project), which governance
	// rules read to find owners. An error stops the pull.
	ScopeTags(ctx context.Context, scope steward.Scope, tags map[string]string) error
	// Done says unit was read completely.
	Done(ctx context.Context, unit Unit) error
	// Failed says reading unit failed part way; err says why (a user-safe
	// *steward.Error where possible).
	Failed(ctx context.Context, unit Unit, err error)
}

// Puller reads one configured source.
type Puller interface {
	Pull(ctx context.Context, sink Sink) error
}
