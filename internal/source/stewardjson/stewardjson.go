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
	p := &parse{ctx: ctx, d: jsonstream.NewDoc(r), yield: yield}
	p.d.WrapReadErrors = true
	p.dec.sr = &p.src
	c, err := p.d.Start("a Steward JSON document or JSON Lines")
	if err != nil {
		return err
	}
	if c != '{' {
		return steward.InvalidRecord(1, p.d.R.Line(), fmt.Errorf("expected a JSON object, found %s", jsonstream.Describe(c)))
	}
	if key, _ := p.d.R.PeekKey(); IsDocumentKey(key) {
		return p.document()
	}
	return p.d.Lines(p.record)
}

// parse reads one input; the navigation (record arrays and lines, errors
// naming the record) is jsonstream.Doc's, shared with the other formats.
type parse struct {
	ctx   context.Context
	d     *jsonstream.Doc // d.N counts the records read so far
	yield func(steward.Observation) error
	src   bytes.Reader
	dec   recordDecoder
}

func (p *parse) document() error {
	seen := false
	err := p.d.Fields("',' or '}' after a document field", func(key string) error {
		switch key {
		case "version":
			v, err := p.d.R.Next()
			if err != nil {
				return p.d.Fail(err)
			}
			if string(v.Bytes) != fmt.Sprint(Version) {
				return steward.InvalidRecord(p.d.N+1, v.Line, fmt.Errorf("unsupported version %s (want %d)", v.Bytes, Version))
			}
			return nil
		case "assessments":
			if seen {
				return steward.InvalidRecord(p.d.N+1, p.d.R.Line(), errors.New(`"assessments" appears twice`))
			}
			seen = true
			return p.array()
		}
		return steward.InvalidRecord(p.d.N+1, p.d.R.Line(), fmt.Errorf("unknown field %q in the document (want \"assessments\" and optionally \"version\")", key))
	})
	if err != nil {
		return err
	}
	if !seen {
		return steward.Errorf(steward.CodeInvalid, `the document has no "assessments" array`)
	}
	return p.d.End("document")
}

func (p *parse) array() error {
	return p.d.Elements(`'[' after "assessments"`, "a record", p.record)
}

func (p *parse) record(v jsonstream.Value) error {
	if err := p.d.Record(p.ctx, v, "an assessment object"); err != nil {
		return err
	}
	n := p.d.N
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
