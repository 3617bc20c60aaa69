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
	jr := jsonstream.NewReader(r)
	n := 0
	fail := func(err error) error {
		if err == io.EOF || errors.Is(err, jsonstream.ErrTruncated) {
			return steward.InvalidRecord(n+1, jr.Line(), fmt.Errorf("unexpected end of input after record %d", n))
		}
		if se, ok := errors.AsType[*jsonstream.SyntaxError](err); ok {
			return steward.InvalidRecord(n+1, se.Line, fmt.Errorf("malformed JSON at byte offset %d: %s", se.Offset, se.Msg))
		}
		return fmt.Errorf("read input after record %d: %w", n, err)
	}
	one := func(v jsonstream.Value) error {
		n++
		if n%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if v.Bytes[0] != '{' {
			return steward.InvalidRecord(n, v.Line, fmt.Errorf("expected a finding result object ({\"finding\": ..., \"resource\": ...}), found %s", jsonstream.Describe(v.Bytes[0])))
		}
		var res Result
		if err := unmarshal.Unmarshal(v.Bytes, &res); err != nil {
			return steward.InvalidRecord(n, v.Line, errors.New(protoMessage(err)))
		}
		obs, _, skip, err := Map(&res)
		if err != nil {
			return steward.InvalidRecord(n, v.Line, err)
		}
		if skip {
			return nil
		}
		return yield(obs)
	}
	// array reads the elements of the array at the next byte.
	array := func() error {
		if err := jr.Consume('[', "'['"); err != nil {
			return fail(err)
		}
		if c, err := jr.Peek(); err != nil {
			return fail(err)
		} else if c == ']' {
			_ = jr.Consume(']', "']'")
			return nil
		}
		for {
			v, err := jr.Next()
			if err != nil {
				return fail(err)
			}
			if err := one(v); err != nil {
				return err
			}
			c, err := jr.Peek()
			if err != nil {
				return fail(err)
			}
			if c == ']' {
				_ = jr.Consume(']', "']'")
				return nil
			}
			if err := jr.Consume(',', "',' or ']' after a finding result"); err != nil {
				return fail(err)
			}
		}
	}

	c, err := jr.Peek()
	if err == io.EOF {
		return steward.Errorf(steward.CodeInvalid, "input is empty (want SCC findings: JSON Lines or an array of {\"finding\": ..., \"resource\": ...})")
	}
	if err != nil {
		return fail(err)
	}
	switch c {
	case '[':
		if err := array(); err != nil {
			return err
		}
		return trailing(jr, n)
	case '{':
		if key, _ := jr.PeekKey(); isResponseKey(key) {
			if err := response(jr, array, fail); err != nil {
				return err
			}
			return trailing(jr, n)
		}
		for {
			v, err := jr.Next()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fail(err)
			}
			if err := one(v); err != nil {
				return err
			}
		}
	}
	return steward.InvalidRecord(1, jr.Line(), fmt.Errorf("expected SCC findings (JSON Lines or an array of finding results), found %s", jsonstream.Describe(c)))
}

// response reads a ListFindingsResponse object, streaming its results.
func response(jr *jsonstream.Reader, array func() error, fail func(error) error) error {
	if err := jr.Consume('{', "'{'"); err != nil {
		return fail(err)
	}
	for first := true; ; first = false {
		c, err := jr.Peek()
		if err != nil {
			return fail(err)
		}
		if c == '}' {
			_ = jr.Consume('}', "'}'")
			return nil
		}
		if !first {
			if err := jr.Consume(',', "',' or '}' in the response object"); err != nil {
				return fail(err)
			}
		}
		key, err := jr.ReadKey()
		if err != nil {
			return fail(err)
		}
		if key == "listFindingsResults" || key == "list_findings_results" {
			if c, err := jr.Peek(); err != nil {
				return fail(err)
			} else if c != '[' {
				return fail(jr.SyntaxErrorf("%s must be an array, found %s", key, jsonstream.Describe(c)))
			}
			if err := array(); err != nil {
				return err
			}
			continue
		}
		if _, err := jr.Next(); err != nil {
			return fail(err)
		}
	}
}

func isResponseKey(key string) bool {
	for _, k := range responseKeys {
		if k == key {
			return true
		}
	}
	return false
}

func trailing(jr *jsonstream.Reader, n int) error {
	c, err := jr.Peek()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read input after record %d: %w", n, err)
	}
	return steward.InvalidRecord(n+1, jr.Line(), fmt.Errorf("unexpected %s after the end of the findings", jsonstream.Describe(c)))
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
