package itsmtest

import (
	"context"
	"iter"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
)

var _ itsm.Provider = (*Fake)(nil)

// Fake is an itsm.Provider whose methods call the matching XFunc field.
// A nil field answers a *itsm.Error of itsm.KindInvalid saying the fake
// does not implement it. Use it to inject failures into callers' tests;
// use the ServiceNow emulator for behaviour.
type Fake struct {
	CreateTicketFunc         func(ctx context.Context, req itsm.CreateRequest) (*itsm.Ticket, error)
	TicketFunc               func(ctx context.Context, ref itsm.Ref) (*itsm.Ticket, error)
	UpdateTicketFunc         func(ctx context.Context, ref itsm.Ref, upd itsm.TicketUpdate) (*itsm.Ticket, error)
	TicketsFunc              func(ctx context.Context, table string, sysIDs []string) ([]*itsm.Ticket, error)
	FindByCorrelationIDsFunc func(ctx context.Context, table string, ids []string) ([]*itsm.Ticket, error)
	ChangedSinceFunc         func(ctx context.Context, table string, since time.Time, correlationPrefix string) iter.Seq2[*itsm.Ticket, error]
	LookupUserFunc           func(ctx context.Context, emailOrSysID string) (*itsm.User, error)
	ValidateFunc             func(ctx context.Context) error
}

func unimplemented(op string) error {
	return &itsm.Error{Op: op, Kind: itsm.KindInvalid, Message: "itsmtest.Fake: " + op + " not set"}
}

// CreateTicket calls CreateTicketFunc.
func (f *Fake) CreateTicket(ctx context.Context, req itsm.CreateRequest) (*itsm.Ticket, error) {
	if f.CreateTicketFunc == nil {
		return nil, unimplemented("create")
	}
	return f.CreateTicketFunc(ctx, req)
}

// Ticket calls TicketFunc.
func (f *Fake) Ticket(ctx context.Context, ref itsm.Ref) (*itsm.Ticket, error) {
	if f.TicketFunc == nil {
		return nil, unimplemented("get")
	}
	return f.TicketFunc(ctx, ref)
}

// UpdateTicket calls UpdateTicketFunc.
func (f *Fake) UpdateTicket(ctx context.Context, ref itsm.Ref, upd itsm.TicketUpdate) (*itsm.Ticket, error) {
	if f.UpdateTicketFunc == nil {
		return nil, unimplemented("update")
	}
	return f.UpdateTicketFunc(ctx, ref, upd)
}

// Tickets calls TicketsFunc.
func (f *Fake) Tickets(ctx context.Context, table string, sysIDs []string) ([]*itsm.Ticket, error) {
	if f.TicketsFunc == nil {
		return nil, unimplemented("list")
	}
	return f.TicketsFunc(ctx, table, sysIDs)
}

// FindByCorrelationIDs calls FindByCorrelationIDsFunc.
func (f *Fake) FindByCorrelationIDs(ctx context.Context, table string, ids []string) ([]*itsm.Ticket, error) {
	if f.FindByCorrelationIDsFunc == nil {
		return nil, unimplemented("list")
	}
	return f.FindByCorrelationIDsFunc(ctx, table, ids)
}

// ChangedSince calls ChangedSinceFunc.
func (f *Fake) ChangedSince(ctx context.Context, table string, since time.Time, correlationPrefix string) iter.Seq2[*itsm.Ticket, error] {
	if f.ChangedSinceFunc == nil {
		return func(yield func(*itsm.Ticket, error) bool) { yield(nil, unimplemented("list changes")) }
	}
	return f.ChangedSinceFunc(ctx, table, since, correlationPrefix)
}

// LookupUser calls LookupUserFunc.
func (f *Fake) LookupUser(ctx context.Context, emailOrSysID string) (*itsm.User, error) {
	if f.LookupUserFunc == nil {
		return nil, unimplemented("lookup user")
	}
	return f.LookupUserFunc(ctx, emailOrSysID)
}

// Validate calls ValidateFunc; nil means valid.
func (f *Fake) Validate(ctx context.Context) error {
	if f.ValidateFunc == nil {
		return nil
	}
	return f.ValidateFunc(ctx)
}

// Seq returns its arguments as a sequence, for ChangedSinceFunc.
func Seq(tickets ...*itsm.Ticket) iter.Seq2[*itsm.Ticket, error] {
	return func(yield func(*itsm.Ticket, error) bool) {
		for _, t := range tickets {
			if !yield(t, nil) {
				return
			}
		}
	}
}

// State returns a pointer to s, for TicketUpdate literals.
func State(s steward.TicketState) *steward.TicketState { return &s }

// Str returns a pointer to s, for TicketUpdate literals.
func Str(s string) *string { return &s }
