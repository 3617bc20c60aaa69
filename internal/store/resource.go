package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/stewardhq/steward"
)

// ResourceFilter selects resources. Zero fields do not filter.
type ResourceFilter struct {
	Scope  steward.Scope
	Cloud  steward.Cloud
	Type   string // exact match
	Cursor string
	Limit  int
}

const resourceSelect = `SELECT norm_id, resource_id, name, type, cloud, region, tags, first_seen, last_seen FROM resource`

func scanResource(sc interface{ Scan(...any) error }) (*steward.Resource, string, error) {
	r := new(steward.Resource)
	var norm, tags string
	var first, last dbTime
	if err := sc.Scan(&norm, &r.ID, &r.Name, &r.Type, &r.Cloud, &r.Region, &tags, &first, &last); err != nil {
		return nil, "", err
	}
	if tags != "" {
		if err := json.Unmarshal([]byte(tags), &r.Tags); err != nil {
			return nil, "", fmt.Errorf("decode tags of %s: %w", r.ID, err)
		}
	}
	r.FirstSeen, r.LastSeen = first.T, last.T
	return r, norm, nil
}

// FindResources lists resources ordered by normalized ID (bytewise;
// PostgreSQL needs COLLATE "C"), one page at a time. Errors: CodeInvalid for
// a bad cursor, limit or scope.
func (db *DB) FindResources(ctx context.Context, f ResourceFilter) ([]*steward.Resource, string, error) {
	out, next, err := db.findResources(ctx, f)
	if err != nil {
		return nil, "", fmt.Errorf("find resources: %w", err)
	}
	return out, next, nil
}

func (db *DB) findResources(ctx context.Context, f ResourceFilter) ([]*steward.Resource, string, error) {
	limit, err := pageLimit(f.Limit)
	if err != nil {
		return nil, "", err
	}
	after, hasAfter, err := decodeCursor[string](cursorResource, f.Cursor)
	if err != nil {
		return nil, "", err
	}
	where, args, err := scopeRange("norm_id", f.Scope)
	if err != nil {
		return nil, "", err
	}
	conds := []string{}
	if where != "" {
		conds = append(conds, where)
	}
	if f.Cloud != "" {
		conds = append(conds, "cloud = ?")
		args = append(args, string(f.Cloud))
	}
	if f.Type != "" {
		conds = append(conds, "type = ?")
		args = append(args, f.Type)
	}
	if hasAfter {
		conds = append(conds, "norm_id > ?")
		args = append(args, after)
	}
	q := resourceSelect
	if len(conds) > 0 {
		q += " WHERE " + strings.Join(conds, " AND ")
	}
	q += " ORDER BY norm_id LIMIT ?"
	args = append(args, limit+1)
	rows, err := db.read.QueryContext(ctx, db.bind(q), args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []*steward.Resource
	var last string
	for rows.Next() {
		r, norm, err := scanResource(rows)
		if err != nil {
			return nil, "", err
		}
		if len(out) == limit {
			return out, encodeCursor(cursorResource, last), rows.Close()
		}
		out = append(out, r)
		last = norm
	}
	return out, "", rows.Err()
}

// FindResourceByID returns the resource whose ID equals id once both are
// normalized (case-insensitive, trailing slash ignored), or CodeNotFound.
func (db *DB) FindResourceByID(ctx context.Context, id string) (*steward.Resource, error) {
	return findResourceByID(ctx, db, db.read, id)
}

// FindResourceByID is DB.FindResourceByID inside the transaction, which
// sees what the transaction wrote.
func (tx *Tx) FindResourceByID(ctx context.Context, id string) (*steward.Resource, error) {
	return findResourceByID(ctx, tx.db, tx.tx, id)
}

func findResourceByID(ctx context.Context, db *DB, q querier, id string) (*steward.Resource, error) {
	r, _, err := scanResource(q.QueryRowContext(ctx, db.bind(resourceSelect+` WHERE norm_id = ?`), steward.NormalizeResourceID(id)))
	if isNoRows(err) {
		return nil, steward.Errorf(steward.CodeNotFound, "resource %q not found", id)
	} else if err != nil {
		return nil, fmt.Errorf("find resource %q: %w", id, err)
	}
	return r, nil
}
