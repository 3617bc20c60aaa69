package apiclient

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/stewardhq/steward"
)

// CreateSource configures a live source.
func (c *Client) CreateSource(ctx context.Context, in steward.SourceInput) (*steward.Source, error) {
	var out steward.Source
	return &out, c.do(ctx, http.MethodPost, "/api/v1/sources", nil, in, &out)
}

// ListSources lists the sources the token may see.
func (c *Client) ListSources(ctx context.Context) (*Page[steward.Source], error) {
	var out Page[steward.Source]
	return &out, c.do(ctx, http.MethodGet, "/api/v1/sources", nil, nil, &out)
}

// GetSource returns one source by ID or name.
func (c *Client) GetSource(ctx context.Context, ref string) (*steward.Source, error) {
	var out steward.Source
	return &out, c.do(ctx, http.MethodGet, "/api/v1/sources/"+url.PathEscape(ref), nil, nil, &out)
}

// UpdateSource changes a source; absent fields stay.
func (c *Client) UpdateSource(ctx context.Context, ref string, in steward.SourceInput) (*steward.Source, error) {
	var out steward.Source
	return &out, c.do(ctx, http.MethodPatch, "/api/v1/sources/"+url.PathEscape(ref), nil, in, &out)
}

// DeleteSource deletes a source.
func (c *Client) DeleteSource(ctx context.Context, ref string) (*steward.Source, error) {
	var out steward.Source
	return &out, c.do(ctx, http.MethodDelete, "/api/v1/sources/"+url.PathEscape(ref), nil, nil, &out)
}

// RunSource queues a run of a source now, or returns the one queued or
// running.
func (c *Client) RunSource(ctx context.Context, ref string) (*steward.SourceRun, error) {
	var out steward.SourceRun
	return &out, c.do(ctx, http.MethodPost, "/api/v1/sources/"+url.PathEscape(ref)+"/run", nil, nil, &out)
}

// ListSourceRuns lists a source's latest runs, newest first (limit 0: the
// server's default).
func (c *Client) ListSourceRuns(ctx context.Context, ref string, limit int) (*Page[steward.SourceRun], error) {
	var q url.Values
	if limit > 0 {
		q = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	var out Page[steward.SourceRun]
	return &out, c.do(ctx, http.MethodGet, "/api/v1/sources/"+url.PathEscape(ref)+"/runs", q, nil, &out)
}

// GetSourceRun returns one run of a source.
func (c *Client) GetSourceRun(ctx context.Context, ref string, run int64) (*steward.SourceRun, error) {
	var out steward.SourceRun
	return &out, c.do(ctx, http.MethodGet, "/api/v1/sources/"+url.PathEscape(ref)+"/runs/"+strconv.FormatInt(run, 10), nil, nil, &out)
}
