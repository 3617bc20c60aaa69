package store

import (
	"context"
	"errors"
	"time"

	"github.com/stewardhq/steward"
)

// TakeGovernanceSnapshots: placeholder until the history engine lands.
func (db *DB) TakeGovernanceSnapshots(ctx context.Context, now time.Time, refresh time.Duration) (GovernanceSnapshots, error) {
	return GovernanceSnapshots{}, errors.New("governance snapshots: not built yet")
}

func (db *DB) governanceSeries(ctx context.Context, f steward.GovernanceFilter, now time.Time) ([]steward.GovernanceDay, string, error) {
	return nil, "", errors.New("not built yet")
}
