// Package checkov parses Checkov's JSON report (`checkov -o json`): one
// report object, or an array of them when several frameworks ran (one per
// check_type). Each entry of results.failed_checks, passed_checks and
// skipped_checks is a record (numbered from 1 across the file) and makes
// one observation:
//
//   - recommendation key "checkov:<check_id>" (Checkov's SARIF output
//     gives the same key through package sarif), display name check_name,
//     severity the check's (Checkov fills it only with a Prisma Cloud API
//     key) else Medium;
//   - resource /repos/unknown/files/<repo_file_path>/<resource address>
//     (sarif.ResourceID plus the address), Cloud "other", tags from
//     entity_tags;
//   - status Unhealthy (failed), Healthy (passed), NotApplicable (skipped,
//     reason the suppress comment).
//
// results.parsing_errors (files Checkov could not read) make no
// observation. Input is streamed one check at a time.
package checkov

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/internal/jsonstream"
	"github.com/stewardhq/steward/internal/source/internal/worst"
	"github.com/stewardhq/steward/internal/source/sarif"
)

// Parser reads Checkov JSON reports. The zero value is ready to use and
// safe for concurrent use.
type Parser struct{}

// Sniff reports whether the input starting with prefix is a Checkov JSON
// report: an object (or an array of objects) whose first key is
// "check_type", or that holds "check_type" and one of the check lists; or
// Checkov's summary-only report of a scan that found nothing.
func Sniff(prefix []byte) bool {
	b := bytes.TrimLeft(bytes.TrimPrefix(prefix, []byte("\xef\xbb\xbf")), " \t\r\n")
	if len(b) > 0 && b[0] == '[' {
		b = bytes.TrimLeft(b[1:], " \t\r\n")
	}
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	key := jsonstream.FirstKey(b)
	if key == "check_type" {
		return true
	}
	if bytes.Contains(b, []byte(`"check_type"`)) {
		for _, m := range []string{`"failed_checks"`, `"passed_checks"`, `"skipped_checks"`} {
			if bytes.Contains(b, []byte(m)) {
				return true
			}
		}
	}
	return key == "passed" && bytes.Contains(b, []byte(`"checkov_version"`))
}

// Check is the part of a Checkov check result Steward reads.
type Check struct {
	CheckID     string `json:"check_id"`
	CheckName   string `json:"check_name"`
	CheckResult struct {
		Result          string `json:"result"`
		SuppressComment string `json:"suppress_comment"`
	} `json:"check_result"`
	FilePath         string         `json:"file_path"`
	RepoFilePath     string         `json:"repo_file_path"`
	FileLineRange    []int          `json:"file_line_range"`
	Resource         string         `json:"resource"`
	ResourceAddress  string         `json:"resource_address"`
	Severity         string         `json:"severity"`
	Guideline        string         `json:"guideline"`
	Description      string         `json:"description"`
	ShortDescription string         `json:"short_description"`
	BCCategory       string         `json:"bc_category"`
	EntityTags       map[string]any `json:"entity_tags"`
}

// Parse streams the observations of a Checkov report to yield. Errors are
// *steward.Error with CodeInvalid naming the record, except those of yield
// and ctx.
func (Parser) Parse(ctx context.Context, r io.Reader, yield func(steward.Observation) error) error {
	p := &parser{ctx: ctx, d: jsonstream.NewDoc(r), yield: yield, worst: worst.New()}
	c, err := p.d.Start("a Checkov JSON report")
	if err != nil {
		return err
	}
	switch c {
	case '{':
		err = p.report("the report")
	case '[':
		err = p.d.Array("the reports", func(i int) error { return p.report(fmt.Sprintf("report %d", i+1)) })
	default:
		return p.d.Invalid(p.d.R.Line(), "expected a Checkov report object or an array of them, found %s", jsonstream.Describe(c))
	}
	if err != nil {
		return err
	}
	return p.d.End("report")
}

// parser reads one report; the navigation (objects, arrays, errors naming
// the record) is jsonstream.Doc's, shared with the other file formats.
type parser struct {
	ctx   context.Context
	d     *jsonstream.Doc // d.N counts the checks read so far
	yield func(steward.Observation) error
	worst *worst.Statuses // the worst status yielded per (recommendation, resource)
}

// report reads one report object; it must have at least one of Checkov's
// top-level keys, so that another JSON file given as --format checkov is
// not read as an empty report.
func (p *parser) report(what string) error {
	if _, err := p.d.Peek(); err != nil {
		return p.d.Fail(err)
	}
	line := p.d.R.Line()
	known := false
	err := p.d.Object(what, func(key string) error {
		switch key {
		case "results":
			known = true
			return p.d.Object(what+": results", func(list string) error {
				status, ok := lists[list]
				if !ok {
					return p.d.Skip() // parsing_errors and anything newer
				}
				return p.d.Array(what+": results."+list, func(int) error { return p.check(status) })
			})
		case "check_type", "summary", "passed", "failed", "checkov_version", "resource_count":
			known = true
		}
		return p.d.Skip()
	})
	if err != nil {
		return err
	}
	if !known {
		return p.d.Invalid(line, "%s is not a Checkov report (none of check_type, results, summary)", what)
	}
	return nil
}

var lists = map[string]steward.AssessmentStatus{
	"failed_checks":  steward.StatusUnhealthy,
	"passed_checks":  steward.StatusHealthy,
	"skipped_checks": steward.StatusNotApplicable,
}

func (p *parser) check(status steward.AssessmentStatus) error {
	v, err := p.d.R.Next()
	if err != nil {
		return p.d.Fail(err)
	}
	if err := p.d.Record(p.ctx, v, "a check object"); err != nil {
		return err
	}
	var c Check
	if err := jsonstream.UnmarshalRecord(p.d.N, v, &c); err != nil {
		return err
	}
	o, err := c.Observation(status)
	if err != nil {
		return steward.InvalidRecord(p.d.N, v.Line, err)
	}
	if !p.worst.Keep(o) {
		return nil
	}
	return p.yield(o)
}

// Observation maps the check; status is that of the list it came from.
func (c *Check) Observation(status steward.AssessmentStatus) (steward.Observation, error) {
	id := strings.TrimSpace(c.CheckID)
	if id == "" {
		return steward.Observation{}, steward.Errorf(steward.CodeInvalid, "check_id is missing")
	}
	sev := steward.SeverityMedium
	if s := strings.TrimSpace(c.Severity); s != "" {
		var err error
		if sev, err = steward.ParseSeverity(s); err != nil {
			return steward.Observation{}, steward.Errorf(steward.CodeInvalid, "severity %q is not one of INFO, LOW, MEDIUM, HIGH, CRITICAL", c.Severity)
		}
	}
	file := strings.TrimSpace(c.RepoFilePath)
	if file == "" {
		file = strings.TrimSpace(c.FilePath)
	}
	file = strings.TrimPrefix(path.Clean("/"+strings.ReplaceAll(file, `\`, "/")), "/")
	if file == "" {
		return steward.Observation{}, steward.Errorf(steward.CodeInvalid, "file_path is missing (the file the check ran on)")
	}
	addr := strings.TrimSpace(c.ResourceAddress)
	if addr == "" {
		addr = strings.TrimSpace(c.Resource)
	}
	res := steward.Resource{ID: ResourceID(file, addr), Name: addr, Type: resourceType(addr), Cloud: steward.CloudOther}
	if addr == "" {
		res.Name, res.Type = file, "file"
	}
	for k, v := range c.EntityTags {
		if res.Tags == nil {
			res.Tags = map[string]string{}
		}
		switch v := v.(type) {
		case string:
			res.Tags[k] = v
		case nil:
			res.Tags[k] = ""
		default:
			b, _ := json.Marshal(v)
			res.Tags[k] = string(b)
		}
	}
	rec := steward.Recommendation{
		Key:         "checkov:" + id,
		DisplayName: firstNonEmpty(c.CheckName, id),
		Description: firstNonEmpty(c.Description, c.ShortDescription),
		Severity:    sev,
		Category:    strings.TrimSpace(c.BCCategory),
		Source:      "checkov",
	}
	if g := strings.TrimSpace(c.Guideline); g != "" {
		rec.Remediation = "References:\n- " + g
	}
	reason := ""
	switch status {
	case steward.StatusUnhealthy:
		reason = "failed in " + file
		if len(c.FileLineRange) == 2 {
			reason += fmt.Sprintf(" lines %d-%d", c.FileLineRange[0], c.FileLineRange[1])
		}
	case steward.StatusNotApplicable:
		reason = "skipped"
		if s := strings.TrimSpace(c.CheckResult.SuppressComment); s != "" {
			reason += ": " + s
		}
	}
	o := steward.Observation{Resource: res, Recommendation: rec, Status: status, StatusReason: reason}
	if err := o.Validate(); err != nil {
		return steward.Observation{}, err
	}
	return o, nil
}

// ResourceID is /repos/unknown/files/<file>/<address>: the file's ID as
// package sarif makes it (a Checkov report names no repository), then the
// resource address kept whole; the file's own ID without an address.
func ResourceID(file, address string) string {
	id := sarif.ResourceID("unknown", file)
	if address != "" {
		id += "/" + address
	}
	return id
}

// resourceType reads the type of a Terraform or CloudFormation address:
// "module.alb.aws_lb.main" → "aws_lb", "data.aws_iam_policy.x" →
// "aws_iam_policy", "AWS::S3::Bucket.MyBucket" → "AWS::S3::Bucket"; ""
// for other shapes.
func resourceType(addr string) string {
	parts := strings.Split(addr, ".")
	for len(parts) >= 2 && parts[0] == "module" {
		parts = parts[2:]
	}
	if len(parts) == 3 && parts[0] == "data" {
		parts = parts[1:]
	}
	if len(parts) != 2 || parts[0] == "" {
		return ""
	}
	return parts[0]
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}
