package ticketsync

import (
	"context"
	"fmt"
	"strings"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/itsm"
)

// ManagerOf finds owner's manager in ServiceNow: the first active
// integration (by ID) that knows owner as a user with a manager
// (sys_user.manager) who has an e-mail address. manager is "" when none
// does; detail then says what each integration answered, for
// `steward notify status`. err is only for a failure to read the
// integrations themselves: an instance that cannot be asked is a detail,
// so one unreachable instance does not stop the others.
func (s *Service) ManagerOf(ctx context.Context, owner string) (manager, detail string, err error) {
	ins, err := s.db.FindIntegrations(ctx)
	if err != nil {
		return "", "", fmt.Errorf("find %s's manager: %w", owner, err)
	}
	var tried []string
	for _, in := range ins {
		if in.State != steward.IntegrationActive {
			continue
		}
		m, why := s.managerIn(ctx, in.ID, owner)
		if m != "" {
			return m, "", nil
		}
		tried = append(tried, fmt.Sprintf("%s: %s", in.Name, why))
	}
	if len(tried) == 0 {
		return "", "no ServiceNow integration is configured", nil
	}
	return "", strings.Join(tried, "; "), nil
}

// managerIn asks one integration; why says why it gave no manager.
func (s *Service) managerIn(ctx context.Context, integrationID int64, owner string) (manager, why string) {
	p, _, err := s.Provider(ctx, integrationID)
	if err != nil {
		return "", "cannot be asked (" + steward.ErrorMessage(err) + ")"
	}
	u, err := p.LookupUser(ctx, owner)
	switch {
	case itsm.IsKind(err, itsm.KindNotFound):
		return "", "no active user has this e-mail address"
	case err != nil:
		return "", "lookup failed (" + steward.ErrorMessage(err) + ")"
	case u.ManagerSysID == "":
		return "", "the user has no manager"
	}
	m, err := p.LookupUser(ctx, u.ManagerSysID)
	switch {
	case itsm.IsKind(err, itsm.KindNotFound):
		return "", "the user's manager " + u.ManagerSysID + " is not readable"
	case err != nil:
		return "", "manager lookup failed (" + steward.ErrorMessage(err) + ")"
	case strings.TrimSpace(m.Email) == "":
		return "", "the user's manager " + m.Name + " has no e-mail address"
	case !m.Active:
		return "", "the user's manager " + m.Email + " is not active"
	}
	return strings.TrimSpace(m.Email), ""
}
