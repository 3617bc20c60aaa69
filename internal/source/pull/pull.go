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
package pull

import (
	"context"

	"github.com/stewardhq/steward"
)

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
