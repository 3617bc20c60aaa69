package store

import (
	"context"
	"errors"
	"time"

	"github.com/stewardhq/steward"
)

func (db *DB) governanceTables(ctx context.Context, f steward.GovernanceFilter, now time.Time, r *steward.GovernanceReport) error {
	return errors.New("not built yet")
}
