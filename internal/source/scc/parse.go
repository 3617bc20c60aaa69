package scc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/internal/jsonstream"
)

// Parser reads SCC findings exported as JSON, in the v2 API's JSON
// encoding of ListFindingsResult ({"finding": {...}, "resource": {...}};
// camelCase or snake_case field names, enums as names or numbers):
//
//   - JSON Lines (or any white-space separated sequence) of results, as SCC
//     writes when findings are exported to Cloud Storage;
//   - a JSON array of results, as `gcloud scc findings list --format=json`
//     prints;
//   - a ListFindingsResponse page ({"listFindingsResults": [...],
//     "nextPageToken": ..., ...}) as the REST API answers.
//
// Unknown fields are ignored. Records are counted per result; a result on
// a non-GCP resource counts but yields nothing (see the package doc). The
// zero value is ready to use and safe for concurrent use.
type Parser struct{}

var unmarshal = protojson.UnmarshalOptions{DiscardUnknown: true}

// responseKeys are the keys of a ListFindingsResponse; the results are under
// the first two (JSON and proto spelling).
var responseKeys = []string{"listFindingsResults", "list_findings_results", "nextPageToken", "next_page_token", "totalSize", "total_size", "readTime", "read_time"}

// Parse streams one observation per GCP finding to yield, in input order.
// Errors are *steward.Error with CodeInvalid naming the record, except
// those of yield and ctx.
func (Parser) Parse(ctx context.Context, r io.Reader, yield func(steward.Observation) error) error {
	d := jsonstream.NewDoc(r)
	d.WrapReadErrors = true
	one := func(v jsonstream.Value) error {
		if err := d.Record(ctx, v, "a finding result object ({\"finding\": ..., \"resource\": ...})"); err != nil {
			return err
		}
		var res Result
		if err := unmarshal.Unmarshal(v.Bytes, &res); err != nil {
			return steward.InvalidRecord(d.N, v.Line, errors.New(protoMessage(err)))
		}
		obs, _, skip, err := Map(&res)
		if err != nil {
			return steward.InvalidRecord(d.N, v.Line, err)
		}
		if skip {
			return nil
		}
		return yield(obs)
	}
	// array reads the elements of the array at the next byte.
	array := func() error { return d.Elements("'['", "a finding result", one) }

	c, err := d.Start("SCC findings: JSON Lines or an array of {\"finding\": ..., \"resource\": ...}")
	if err != nil {
		return err
	}
	switch c {
	case '[':
		if err := array(); err != nil {
			return err
		}
		return d.End("findings")
	case '{':
		if key, _ := d.R.PeekKey(); isResponseKey(key) {
			if err := response(d, array); err != nil {
				return err
			}
			return d.End("findings")
		}
		return d.Lines(one)
	}
	return steward.InvalidRecord(1, d.R.Line(), fmt.Errorf("expected SCC findings (JSON Lines or an array of finding results), found %s", jsonstream.Describe(c)))
}

// response reads a ListFindingsResponse object, streaming its results.
func response(d *jsonstream.Doc, array func() error) error {
	return d.Object("the response object", func(key string) error {
		if key != "listFindingsResults" && key != "list_findings_results" {
			return d.Skip()
		}
		if c, err := d.R.Peek(); err != nil {
			return d.Fail(err)
		} else if c != '[' {
			return d.Fail(d.R.SyntaxErrorf("%s must be an array, found %s", key, jsonstream.Describe(c)))
		}
		return array()
	})
}

func isResponseKey(key string) bool {
	for _, k := range responseKeys {
		if k == key {
			return true
		}
	}
	return false
}

// protoMessage strips protojson's "proto: " prefix (and its non-breaking
// space variant) from a decode error.
func protoMessage(err error) string {
	msg := err.Error()
	for _, p := range []string{"proto:\u00a0", "proto: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return "not a valid SCC finding result: " + msg
}

// Sniff reports whether the start of an input looks like SCC findings: a
// JSON object or array of objects holding a "finding" object that has SCC's
// "category" and "resourceName" (or "resource_name"), or a ListFindings
// response.
func Sniff(prefix []byte) bool {
	b := bytes.TrimLeft(bytes.TrimPrefix(prefix, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(b) == 0 || (b[0] != '{' && b[0] != '[') {
		return false
	}
	if bytes.Contains(b, []byte(`"listFindingsResults"`)) || bytes.Contains(b, []byte(`"list_findings_results"`)) {
		return true
	}
	return bytes.Contains(b, []byte(`"finding"`)) && bytes.Contains(b, []byte(`"category"`)) &&
		(bytes.Contains(b, []byte(`"resourceName"`)) || bytes.Contains(b, []byte(`"resource_name"`)))
}
