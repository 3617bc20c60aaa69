// Package stewardjson parses Steward's own assessment format (see
// docs/formats.md): either one JSON document {"assessments": [...]} or JSON
// Lines, one assessment object per line. Both are streamed record by record,
// so input size is bounded only by the disk.
//
// The format is strict: unknown fields are errors, so a typo such as
// "severty" is reported instead of silently dropping the severity.
package stewardjson

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/internal/jsonstream"
)

// Version is the document version this package reads and writes.
const Version = 1

// Assessment is one record of the format, as it appears on the wire.
type Assessment struct {
	Resource       *Resource       `json:"resource"`
	Recommendation *Recommendation `json:"recommendation"`
	Status         string          `json:"status"`
	StatusReason   string          `json:"status_reason,omitempty"`
	// ObservedAt is RFC 3339; empty means "at import time".
	ObservedAt string `json:"observed_at,omitempty"`
}

// Resource is the wire form of steward.Resource.
type Resource struct {
	ID     string            `json:"id"`
	Name   string            `json:"name,omitempty"`
	Type   string            `json:"type,omitempty"`
	Cloud  string            `json:"cloud,omitempty"`
	Region string            `json:"region,omitempty"`
	Tags   map[string]string `json:"tags,omitempty"`
}

// Recommendation is the wire form of steward.Recommendation.
type Recommendation struct {
	Key         string `json:"key"`
	DisplayName string `json:"display_name,omitempty"`
	Description string `json:"description,omitempty"`
	Remediation string `json:"remediation,omitempty"`
	Severity    string `json:"severity"`
	Category    string `json:"category,omitempty"`
	Source      string `json:"source,omitempty"`
}

// FromObservation returns the wire form of o.
func FromObservation(o steward.Observation) Assessment {
	a := Assessment{
		Resource: &Resource{
			ID: o.Resource.ID, Name: o.Resource.Name, Type: o.Resource.Type,
			Cloud: string(o.Resource.Cloud), Region: o.Resource.Region, Tags: o.Resource.Tags,
		},
		Recommendation: &Recommendation{
			Key: o.Recommendation.Key, DisplayName: o.Recommendation.DisplayName,
			Description: o.Recommendation.Description, Remediation: o.Recommendation.Remediation,
			Severity: string(o.Recommendation.Severity), Category: o.Recommendation.Category,
			Source: o.Recommendation.Source,
		},
		Status:       string(o.Status),
		StatusReason: o.StatusReason,
	}
	if !o.ObservedAt.IsZero() {
		a.ObservedAt = o.ObservedAt.UTC().Format(time.RFC3339Nano)
	}
	return a
}

// Observation converts and validates a decoded record. Errors name the field.
func (a *Assessment) Observation() (steward.Observation, error) {
	var o steward.Observation
	if a.Resource == nil {
		return o, steward.Errorf(steward.CodeInvalid, "resource is missing")
	}
	if a.Recommendation == nil {
		return o, steward.Errorf(steward.CodeInvalid, "recommendation is missing")
	}
	if strings.TrimSpace(a.Resource.ID) == "" {
		return o, steward.Errorf(steward.CodeInvalid, "resource.id is missing")
	}
	if strings.TrimSpace(a.Recommendation.Key) == "" {
		return o, steward.Errorf(steward.CodeInvalid, "recommendation.key is missing")
	}
	cloud, err := steward.ParseCloud(a.Resource.Cloud)
	if err != nil {
		return o, fieldErr("resource.cloud", err)
	}
	if a.Recommendation.Severity == "" {
		return o, steward.Errorf(steward.CodeInvalid, "recommendation.severity is missing")
	}
	sev, err := steward.ParseSeverity(a.Recommendation.Severity)
	if err != nil {
		return o, fieldErr("recommendation.severity", err)
	}
	if a.Status == "" {
		return o, steward.Errorf(steward.CodeInvalid, "status is missing")
	}
	status, err := steward.ParseStatus(a.Status)
	if err != nil {
		return o, fieldErr("status", err)
	}
	var at time.Time
	if a.ObservedAt != "" {
		at, err = time.Parse(time.RFC3339Nano, a.ObservedAt)
		if err != nil {
			return o, steward.Errorf(steward.CodeInvalid, "observed_at %q is not an RFC 3339 time such as 2025-02-14T14:27:03Z", a.ObservedAt)
		}
	}
	o = steward.Observation{
		Resource: steward.Resource{
			ID: a.Resource.ID, Name: a.Resource.Name, Type: a.Resource.Type, Cloud: cloud,
			Region: a.Resource.Region, Tags: a.Resource.Tags,
		},
		Recommendation: steward.Recommendation{
			Key: a.Recommendation.Key, DisplayName: a.Recommendation.DisplayName,
			Description: a.Recommendation.Description, Remediation: a.Recommendation.Remediation,
			Severity: sev, Category: a.Recommendation.Category, Source: a.Recommendation.Source,
		},
		Status:       status,
		StatusReason: a.StatusReason,
		ObservedAt:   at,
	}
	if err := o.Validate(); err != nil {
		return o, err
	}
	return o, nil
}

func fieldErr(field string, err error) error {
	return steward.Errorf(steward.CodeInvalid, "%s: %s", field, steward.ErrorMessage(err))
}

// Parser reads the format. The zero value is ready to use; it is safe for
// concurrent use because Parse keeps all state on its stack.
type Parser struct{}

// documentKeys are the keys that mark the document form; anything else as
// the first key of the first object means JSON Lines.
var documentKeys = []string{"assessments", "version"}

// IsDocumentKey reports whether key, the first key of an input's first
// object, marks the {"assessments": [...]} form.
func IsDocumentKey(key string) bool { return slices.Contains(documentKeys, key) }

// RecordKeys are the top-level keys of an assessment record.
var RecordKeys = []string{"resource", "recommendation", "status", "status_reason", "observed_at"}

// Parse streams the observations of r to yield, in input order. Errors are
// *steward.Error with CodeInvalid naming the record and line, except those
// of yield and of ctx, which are returned as they are.
func (Parser) Parse(ctx context.Context, r io.Reader, yield func(steward.Observation) error) error {
	p := &parse{ctx: ctx, jr: jsonstream.NewReader(r), yield: yield}
	p.dec.sr = &p.src
	c, err := p.jr.Peek()
	if err == io.EOF {
		return steward.Errorf(steward.CodeInvalid, "input is empty (want a Steward JSON document or JSON Lines)")
	}
	if err != nil {
		return p.fail(err)
	}
	if c != '{' {
		return steward.InvalidRecord(1, p.jr.Line(), fmt.Errorf("expected a JSON object, found %s", jsonstream.Describe(c)))
	}
	if key, _ := p.jr.PeekKey(); IsDocumentKey(key) {
		return p.document()
	}
	return p.lines()
}

type parse struct {
	ctx   context.Context
	jr    *jsonstream.Reader
	yield func(steward.Observation) error
	n     int // records yielded so far
	src   bytes.Reader
	dec   recordDecoder
}

// fail turns a stream error into the error for record n+1.
func (p *parse) fail(err error) error {
	if errors.Is(err, jsonstream.ErrTruncated) {
		return steward.InvalidRecord(p.n+1, p.jr.Line(), fmt.Errorf("unexpected end of input after record %d", p.n))
	}
	if se, ok := errors.AsType[*jsonstream.SyntaxError](err); ok {
		return steward.InvalidRecord(p.n+1, se.Line, fmt.Errorf("malformed JSON at byte offset %d: %s", se.Offset, se.Msg))
	}
	// A read error: not the user's input's fault.
	return fmt.Errorf("read input after record %d: %w", p.n, err)
}

func (p *parse) lines() error {
	for {
		v, err := p.jr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return p.fail(err)
		}
		if err := p.record(v); err != nil {
			return err
		}
	}
}

func (p *parse) document() error {
	if err := p.jr.Consume('{', "'{'"); err != nil {
		return p.fail(err)
	}
	seen := false
	for {
		key, err := p.jr.ReadKey()
		if err != nil {
			return p.fail(err)
		}
		switch key {
		case "version":
			v, err := p.jr.Next()
			if err != nil {
				return p.fail(orTruncated(err))
			}
			if string(v.Bytes) != fmt.Sprint(Version) {
				return steward.InvalidRecord(p.n+1, v.Line, fmt.Errorf("unsupported version %s (want %d)", v.Bytes, Version))
			}
		case "assessments":
			if seen {
				return steward.InvalidRecord(p.n+1, p.jr.Line(), errors.New(`"assessments" appears twice`))
			}
			seen = true
			if err := p.array(); err != nil {
				return err
			}
		default:
			return steward.InvalidRecord(p.n+1, p.jr.Line(), fmt.Errorf("unknown field %q in the document (want \"assessments\" and optionally \"version\")", key))
		}
		c, err := p.jr.Peek()
		if err == io.EOF {
			return p.fail(jsonstream.ErrTruncated)
		}
		if err != nil {
			return p.fail(err)
		}
		if c == '}' {
			_ = p.jr.Consume('}', "'}'")
			break
		}
		if err := p.jr.Consume(',', "',' or '}' after a document field"); err != nil {
			return p.fail(err)
		}
	}
	if !seen {
		return steward.Errorf(steward.CodeInvalid, `the document has no "assessments" array`)
	}
	if c, err := p.jr.Peek(); err != io.EOF {
		if err != nil {
			return p.fail(err)
		}
		return steward.InvalidRecord(p.n+1, p.jr.Line(), fmt.Errorf("unexpected %s after the end of the document", jsonstream.Describe(c)))
	}
	return nil
}

func (p *parse) array() error {
	if err := p.jr.Consume('[', `'[' after "assessments"`); err != nil {
		return p.fail(err)
	}
	c, err := p.jr.Peek()
	if err != nil {
		return p.fail(orTruncated(err))
	}
	if c == ']' {
		return p.jr.Consume(']', "']'")
	}
	for {
		v, err := p.jr.Next()
		if err != nil {
			return p.fail(orTruncated(err))
		}
		if err := p.record(v); err != nil {
			return err
		}
		c, err := p.jr.Peek()
		if err != nil {
			return p.fail(orTruncated(err))
		}
		if c == ']' {
			return p.jr.Consume(']', "']'")
		}
		if err := p.jr.Consume(',', "',' or ']' after a record"); err != nil {
			return p.fail(err)
		}
	}
}

func orTruncated(err error) error {
	if err == io.EOF {
		return jsonstream.ErrTruncated
	}
	return err
}

func (p *parse) record(v jsonstream.Value) error {
	n := p.n + 1
	if n%1024 == 0 {
		if err := p.ctx.Err(); err != nil {
			return err
		}
	}
	if v.Bytes[0] != '{' {
		return steward.InvalidRecord(n, v.Line, fmt.Errorf("expected an assessment object, found %s", jsonstream.Describe(v.Bytes[0])))
	}
	var a Assessment
	if base, err := p.dec.decode(v.Bytes, &a); err != nil {
		line, msg := jsonstream.DecodeError(v, err, base)
		if field, ok := unknownField(v.Bytes, err); ok {
			msg = fmt.Sprintf("unknown field %q", field)
		}
		return steward.InvalidRecord(n, line, errors.New(msg))
	}
	o, err := a.Observation()
	if err != nil {
		return steward.InvalidRecord(n, v.Line, err)
	}
	p.n = n
	return p.yield(o)
}

// recordDecoder reuses one json.Decoder (with DisallowUnknownFields, which
// json.Unmarshal lacks) across records by swapping the bytes it reads.
type recordDecoder struct {
	sr  *bytes.Reader
	dec *json.Decoder
	fed int64 // bytes given to dec before the current record
}

// decode returns, with any error, how many bytes the decoder had consumed
// before b: its error offsets count from its first byte.
func (d *recordDecoder) decode(b []byte, into *Assessment) (base int64, err error) {
	d.sr.Reset(b)
	if d.dec == nil {
		d.dec = json.NewDecoder(d.sr)
		d.dec.DisallowUnknownFields()
		d.fed = 0
	}
	base = d.fed
	d.fed += int64(len(b))
	if err := d.dec.Decode(into); err != nil {
		// The decoder's state is unknown after an error; start afresh.
		d.dec = nil
		return base, err
	}
	return base, nil
}

// unknownField finds the full path of the field the decoder complained
// about, e.g. "resource.colour", by walking the record against the schema.
// It runs only on the error path.
func unknownField(b []byte, err error) (string, bool) {
	name, ok := strings.CutPrefix(err.Error(), "json: unknown field ")
	if !ok {
		return "", false
	}
	name = strings.Trim(name, `"`)
	var rec map[string]json.RawMessage
	if json.Unmarshal(b, &rec) != nil {
		return name, true
	}
	known := map[string][]string{
		"":               RecordKeys,
		"resource":       {"id", "name", "type", "cloud", "region", "tags"},
		"recommendation": {"key", "display_name", "description", "remediation", "severity", "category", "source"},
	}
	isKnown := func(parent, k string) bool {
		return slices.ContainsFunc(known[parent], func(s string) bool { return strings.EqualFold(s, k) })
	}
	if _, ok := rec[name]; ok && !isKnown("", name) {
		return name, true
	}
	for _, parent := range []string{"resource", "recommendation"} {
		var sub map[string]json.RawMessage
		for k, raw := range rec {
			if strings.EqualFold(k, parent) && json.Unmarshal(raw, &sub) == nil {
				if _, ok := sub[name]; ok && !isKnown(parent, name) {
					return parent + "." + name, true
				}
			}
		}
	}
	return name, true
}
