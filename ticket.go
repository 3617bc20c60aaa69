package steward

// TicketState is the normalized state of an ITSM record; each ITSM table
// maps its own state values onto these.
type TicketState string

// Normalized ticket states.
const (
	TicketNew        TicketState = "New"
	TicketInProgress TicketState = "InProgress"
	TicketOnHold     TicketState = "OnHold"
	TicketResolved   TicketState = "Resolved"
	TicketClosed     TicketState = "Closed"
	TicketCanceled   TicketState = "Canceled"
)

// Ended reports whether the ticket has reached a state that ends its
// assignment (DESIGN.md: Resolved, Canceled or Closed).
func (s TicketState) Ended() bool {
	return s == TicketResolved || s == TicketClosed || s == TicketCanceled
}
