// Package asff maps AWS Security Finding Format (ASFF) findings, the format
// of AWS Security Hub, onto Steward observations, and parses ASFF files:
// a {"Findings": [...]} document (what `aws securityhub get-findings` and
// Security Hub exports write; a "NextToken" next to it is ignored), a bare
// JSON array of findings, or JSON Lines with one finding per line (Prowler
// 2.x `-M json-asff`). Input is streamed one finding at a time.
//
// The same mapping serves the live puller (internal/source/securityhub),
// which converts the SDK's findings into Finding.
//
// Mapping (docs/sources.md has the full table):
//
//   - one observation per finding, for Resources[0], the resource the
//     finding is about. Security Hub's controls write one finding per
//     resource; products that list more resources (GuardDuty: an instance
//     and an access key) list related ones after it, which are not assessed.
//   - recommendation key: "<source>:<check>", where check is the finding's
//     vulnerability ID (Vulnerabilities[0].Id, or Trivy's "CVE ID"), else
//     Compliance.SecurityControlId (consolidated control findings), else
//     ProductFields.ControlId (per-standard AWS Foundational Security Best
//     Practices findings: the same IDs, so both spellings of a control meet),
//     else GeneratorId. None of these carries the account, region or
//     resource, so a check is one recommendation across resources.
//   - source: "securityhub" for Security Hub's own findings, otherwise the
//     product's name in lower case with spaces as "-" ("trivy", "prowler",
//     "guardduty", "inspector").
//   - resource ID: /aws/accounts/<AwsAccountId>/regions/<region>/<Resources[0].Id>,
//     built by ocsf.ResourceID so a resource seen by Prowler OCSF and by
//     Security Hub is one resource.
package asff

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/internal/jsonstream"
	"github.com/stewardhq/steward/internal/source/ocsf"
)

// Finding is the subset of an ASFF finding that Steward reads. Field names
// are ASFF's.
type Finding struct {
	ID                    string                 `json:"Id"`
	ProductArn            string                 `json:"ProductArn"`
	ProductName           string                 `json:"ProductName"`
	CompanyName           string                 `json:"CompanyName"`
	Region                string                 `json:"Region"`
	GeneratorID           string                 `json:"GeneratorId"`
	AwsAccountID          string                 `json:"AwsAccountId"`
	Types                 []string               `json:"Types"`
	FirstObservedAt       string                 `json:"FirstObservedAt"`
	LastObservedAt        string                 `json:"LastObservedAt"`
	CreatedAt             string                 `json:"CreatedAt"`
	UpdatedAt             string                 `json:"UpdatedAt"`
	Severity              *Severity              `json:"Severity"`
	FindingProviderFields *FindingProviderFields `json:"FindingProviderFields"`
	Title                 string                 `json:"Title"`
	Description           string                 `json:"Description"`
	Remediation           *Remediation           `json:"Remediation"`
	ProductFields         map[string]string      `json:"ProductFields"`
	Resources             []Resource             `json:"Resources"`
	Compliance            *Compliance            `json:"Compliance"`
	Workflow              *Workflow              `json:"Workflow"`
	RecordState           string                 `json:"RecordState"`
	Vulnerabilities       []Vulnerability        `json:"Vulnerabilities"`
}

// Severity is a finding's Severity.
type Severity struct {
	Label      string `json:"Label"`
	Normalized *int   `json:"Normalized"`
}

// FindingProviderFields holds the finding provider's own severity, used
// when Severity has no label.
type FindingProviderFields struct {
	Severity *Severity `json:"Severity"`
}

// Remediation is a finding's Remediation.
type Remediation struct {
	Recommendation *Recommendation `json:"Recommendation"`
}

// Recommendation is the remediation text and link.
type Recommendation struct {
	Text string `json:"Text"`
	URL  string `json:"Url"`
}

// Compliance is the result of a control check.
type Compliance struct {
	Status            string         `json:"Status"`
	SecurityControlID string         `json:"SecurityControlId"`
	StatusReasons     []StatusReason `json:"StatusReasons"`
}

// StatusReason says why a control check has its status.
type StatusReason struct {
	ReasonCode  string `json:"ReasonCode"`
	Description string `json:"Description"`
}

// Workflow is the finding's investigation status.
type Workflow struct {
	Status string `json:"Status"`
}

// Vulnerability is one entry of a finding's Vulnerabilities.
type Vulnerability struct {
	ID string `json:"Id"`
}

// Resource is one entry of a finding's Resources.
type Resource struct {
	Type      string            `json:"Type"`
	ID        string            `json:"Id"`
	Partition string            `json:"Partition"`
	Region    string            `json:"Region"`
	Tags      map[string]string `json:"Tags"`
	Details   *ResourceDetails  `json:"Details"`
}

// ResourceDetails keeps the free-form "Other" details (Trivy puts the CVE
// ID there).
type ResourceDetails struct {
	Other map[string]string `json:"Other"`
}

// Observation maps the finding. Errors are CodeInvalid and name the ASFF
// field at fault.
func (f *Finding) Observation() (steward.Observation, error) {
	var o steward.Observation
	account := strings.TrimSpace(f.AwsAccountID)
	if account == "" {
		return o, steward.Errorf(steward.CodeInvalid, "AwsAccountId is missing")
	}
	if len(f.Resources) == 0 {
		return o, steward.Errorf(steward.CodeInvalid, "Resources is empty (want at least one resource)")
	}
	res := &f.Resources[0]
	if strings.TrimSpace(res.ID) == "" {
		return o, steward.Errorf(steward.CodeInvalid, "Resources[0].Id is missing")
	}
	sev, err := f.severity()
	if err != nil {
		return o, err
	}
	status, reason, err := f.status()
	if err != nil {
		return o, err
	}
	source := f.Source()
	check := f.Check()
	if check == "" {
		return o, steward.Errorf(steward.CodeInvalid, "GeneratorId is missing (the check that made the finding)")
	}
	region := firstNonEmpty(res.Region, f.region(), "global")
	id, err := ocsf.ResourceID(steward.CloudAWS, "aws", account, region, &ocsf.Resource{UID: res.ID, Region: region})
	if err != nil {
		return o, steward.Errorf(steward.CodeInvalid, "Resources[0]: %s", steward.ErrorMessage(err))
	}
	o = steward.Observation{
		Resource: steward.Resource{
			ID: id, Name: resourceName(res.ID), Type: strings.TrimSpace(res.Type), Cloud: steward.CloudAWS,
			Region: region, Tags: tags(res.Tags),
		},
		Recommendation: steward.Recommendation{
			Key:         source + ":" + check,
			DisplayName: firstNonEmpty(f.Title, check),
			Description: strings.TrimSpace(f.Description),
			Remediation: f.remediation(),
			Severity:    sev,
			Category:    category(f.Types),
			Source:      source,
		},
		Status:       status,
		StatusReason: reason,
		ObservedAt:   f.observedAt(),
	}
	if err := o.Validate(); err != nil {
		return o, err
	}
	return o, nil
}

// Check is the stable identity of the check behind the finding, without
// the source prefix (see the package doc).
func (f *Finding) Check() string {
	for _, v := range f.Vulnerabilities {
		if id := strings.TrimSpace(v.ID); id != "" {
			return id
		}
	}
	if len(f.Resources) > 0 && f.Resources[0].Details != nil {
		if id := strings.TrimSpace(f.Resources[0].Details.Other["CVE ID"]); id != "" {
			return id
		}
	}
	if f.Compliance != nil {
		if id := strings.TrimSpace(f.Compliance.SecurityControlID); id != "" {
			return id
		}
	}
	if id := strings.TrimSpace(f.ProductFields["ControlId"]); id != "" {
		return id
	}
	return strings.TrimSpace(f.GeneratorID)
}

// Source is "securityhub" for Security Hub's own findings and the product's
// name (lower case, spaces as "-") for any other product.
func (f *Finding) Source() string {
	if company, product := productOf(f.ProductArn); company == "aws" && product == "securityhub" {
		return "securityhub"
	}
	name := firstNonEmpty(f.ProductName, f.ProductFields["aws/securityhub/ProductName"],
		f.ProductFields["ProviderName"], f.ProductFields["Product Name"])
	if name == "" {
		_, name = productOf(f.ProductArn)
	}
	name = strings.Join(strings.Fields(strings.ToLower(name)), "-")
	switch name {
	case "", "security-hub", "securityhub":
		return "securityhub"
	}
	return name
}

// productOf splits a product ARN such as
// arn:aws:securityhub:us-east-1::product/aquasecurity/aquasecurity into
// its company and product names.
func productOf(arn string) (company, product string) {
	_, rest, ok := strings.Cut(arn, ":product/")
	if !ok {
		return "", ""
	}
	company, product, _ = strings.Cut(rest, "/")
	return strings.ToLower(company), strings.ToLower(product)
}

// region is the finding's region: Region, else the one in ProductArn or Id.
func (f *Finding) region() string {
	if r := strings.TrimSpace(f.Region); r != "" {
		return r
	}
	for _, arn := range []string{f.ProductArn, f.ID} {
		if parts := strings.SplitN(arn, ":", 5); len(parts) == 5 && parts[0] == "arn" && parts[3] != "" {
			return parts[3]
		}
	}
	return ""
}

// severityLabels maps ASFF's Severity.Label.
var severityLabels = map[string]steward.Severity{
	"INFORMATIONAL": steward.SeverityLow, "LOW": steward.SeverityLow, "MEDIUM": steward.SeverityMedium,
	"HIGH": steward.SeverityHigh, "CRITICAL": steward.SeverityCritical,
}

func (f *Finding) severity() (steward.Severity, error) {
	label := ""
	if f.Severity != nil {
		label = f.Severity.Label
	}
	if label == "" && f.FindingProviderFields != nil && f.FindingProviderFields.Severity != nil {
		label = f.FindingProviderFields.Severity.Label
	}
	if label != "" {
		sev, ok := severityLabels[strings.ToUpper(strings.TrimSpace(label))]
		if !ok {
			return "", steward.Errorf(steward.CodeInvalid, "Severity.Label %q is not one of INFORMATIONAL, LOW, MEDIUM, HIGH, CRITICAL", label)
		}
		return sev, nil
	}
	if f.Severity != nil && f.Severity.Normalized != nil {
		// ASFF's documented ranges for Normalized (0 is INFORMATIONAL).
		switch n := *f.Severity.Normalized; {
		case n < 0 || n > 100:
			return "", steward.Errorf(steward.CodeInvalid, "Severity.Normalized %d is not within 0–100", n)
		case n < 40:
			return steward.SeverityLow, nil
		case n < 70:
			return steward.SeverityMedium, nil
		case n < 90:
			return steward.SeverityHigh, nil
		default:
			return steward.SeverityCritical, nil
		}
	}
	return "", steward.Errorf(steward.CodeInvalid, "Severity.Label is missing")
}

// status maps the finding's state (docs/sources.md, "ASFF files"):
//
//   - RecordState ARCHIVED: Healthy (Security Hub archives a finding when
//     its resource is deleted or its control disabled, or the product
//     stopped reporting it).
//   - Compliance.Status: PASSED Healthy, FAILED and WARNING Unhealthy
//     (NotApplicable when the finding's workflow is SUPPRESSED: someone
//     accepted it in Security Hub), NOT_AVAILABLE NotApplicable.
//   - without Compliance (vulnerabilities, threats): Workflow.Status
//     RESOLVED or SUPPRESSED Healthy, anything else Unhealthy.
func (f *Finding) status() (steward.AssessmentStatus, string, error) {
	workflow := ""
	if f.Workflow != nil {
		workflow = strings.ToUpper(strings.TrimSpace(f.Workflow.Status))
	}
	record := strings.ToUpper(strings.TrimSpace(f.RecordState))
	switch record {
	case "", "ACTIVE":
	case "ARCHIVED":
		return steward.StatusHealthy, "archived in Security Hub", nil
	default:
		return "", "", steward.Errorf(steward.CodeInvalid, "RecordState %q is not ACTIVE or ARCHIVED", f.RecordState)
	}
	switch workflow {
	case "", "NEW", "NOTIFIED", "RESOLVED", "SUPPRESSED":
	default:
		return "", "", steward.Errorf(steward.CodeInvalid, "Workflow.Status %q is not one of NEW, NOTIFIED, RESOLVED, SUPPRESSED", f.Workflow.Status)
	}
	if f.Compliance != nil && strings.TrimSpace(f.Compliance.Status) != "" {
		reason := f.complianceReason()
		switch strings.ToUpper(strings.TrimSpace(f.Compliance.Status)) {
		case "PASSED":
			return steward.StatusHealthy, reason, nil
		case "FAILED", "WARNING":
			if workflow == "SUPPRESSED" {
				return steward.StatusNotApplicable, joinReason("suppressed in Security Hub", reason), nil
			}
			return steward.StatusUnhealthy, reason, nil
		case "NOT_AVAILABLE":
			return steward.StatusNotApplicable, reason, nil
		}
		return "", "", steward.Errorf(steward.CodeInvalid, "Compliance.Status %q is not one of PASSED, WARNING, FAILED, NOT_AVAILABLE", f.Compliance.Status)
	}
	switch workflow {
	case "RESOLVED":
		return steward.StatusHealthy, "resolved in Security Hub", nil
	case "SUPPRESSED":
		return steward.StatusHealthy, "suppressed in Security Hub", nil
	}
	return steward.StatusUnhealthy, "", nil
}

func (f *Finding) complianceReason() string {
	var parts []string
	for _, r := range f.Compliance.StatusReasons {
		if s := firstNonEmpty(r.Description, r.ReasonCode); s != "" && !slices.Contains(parts, s) {
			parts = append(parts, s)
		}
	}
	if len(parts) == 0 {
		if s := strings.TrimSpace(f.ProductFields["aws/securityhub/annotation"]); s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "; ")
}

func joinReason(a, b string) string {
	if b == "" {
		return a
	}
	return a + ": " + b
}

func (f *Finding) remediation() string {
	if f.Remediation == nil || f.Remediation.Recommendation == nil {
		return ""
	}
	text := strings.TrimSpace(f.Remediation.Recommendation.Text)
	url := strings.TrimSpace(f.Remediation.Recommendation.URL)
	switch {
	case url == "":
		return text
	case text == "":
		return url
	}
	return text + "\n\n" + url
}

// observedAt is LastObservedAt, else UpdatedAt, else CreatedAt (ASFF times
// are RFC 3339); zero when none parses.
func (f *Finding) observedAt() time.Time {
	for _, s := range []string{f.LastObservedAt, f.UpdatedAt, f.CreatedAt} {
		if t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s)); err == nil {
			return t.UTC()
		}
	}
	return time.Time{}
}

func category(types []string) string {
	var out []string
	for _, t := range types {
		if t = strings.TrimSpace(t); t != "" && !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return strings.Join(out, ", ")
}

func tags(in map[string]string) map[string]string {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]string, len(in))
	for k, v := range in {
		if k = strings.TrimSpace(k); k != "" {
			out[k] = v
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// resourceName is the last part of an ARN's resource (the bucket, the
// role, the instance ID), or the ID itself when it is not an ARN.
func resourceName(id string) string {
	id = strings.TrimSpace(id)
	parts := strings.SplitN(id, ":", 6)
	if len(parts) < 6 || parts[0] != "arn" {
		return id
	}
	name := parts[5]
	if i := strings.LastIndexAny(name, "/:"); i >= 0 && i < len(name)-1 {
		name = name[i+1:]
	}
	return name
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

// Sniff reports whether the start of a file looks like ASFF: an object
// whose first key is "Findings", or findings (an array or JSON Lines)
// carrying at least two of ASFF's required keys SchemaVersion, ProductArn,
// GeneratorId and AwsAccountId.
func Sniff(prefix []byte) bool {
	b := bytes.TrimPrefix(prefix, []byte("\xef\xbb\xbf"))
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || (b[0] != '{' && b[0] != '[') {
		return false
	}
	if b[0] == '{' {
		rest := bytes.TrimLeft(b[1:], " \t\r\n")
		if bytes.HasPrefix(rest, []byte(`"Findings"`)) {
			return true
		}
	}
	n := 0
	for _, k := range []string{`"SchemaVersion"`, `"ProductArn"`, `"GeneratorId"`, `"AwsAccountId"`} {
		if bytes.Contains(b, []byte(k)) {
			n++
		}
	}
	return n >= 2
}

// Parser reads ASFF files. The zero value is ready to use and safe for
// concurrent use.
type Parser struct{}

// Parse streams one observation per finding to yield, in input order.
// Record numbers in errors count findings. Errors are *steward.Error with
// CodeInvalid, except those of yield and ctx.
func (Parser) Parse(ctx context.Context, r io.Reader, yield func(steward.Observation) error) error {
	p := &parse{ctx: ctx, d: jsonstream.NewDoc(r), yield: yield}
	p.d.WrapReadErrors = true
	c, err := p.d.Start(`ASFF: {"Findings": [...]} or one finding per line`)
	if err != nil {
		return err
	}
	switch c {
	case '[':
		if err := p.array(); err != nil {
			return err
		}
		return p.d.End("array")
	case '{':
		if key, _ := p.d.R.PeekKey(); key == "Findings" || key == "NextToken" {
			return p.document()
		}
		return p.d.Lines(p.record)
	}
	return steward.InvalidRecord(1, p.d.R.Line(), fmt.Errorf(`expected ASFF ({"Findings": [...]} or one finding object per line), found %s`, jsonstream.Describe(c)))
}

// parse reads one input; the navigation (record arrays and lines, errors
// naming the record) is jsonstream.Doc's, shared with the other formats.
type parse struct {
	ctx   context.Context
	d     *jsonstream.Doc // d.N counts the findings read so far
	yield func(steward.Observation) error
}

// document reads {"Findings": [...]}, skipping other top-level keys
// ("NextToken" from the CLI).
func (p *parse) document() error {
	seen := false
	err := p.d.Fields("',' or '}' after a document field", func(key string) error {
		if key != "Findings" {
			return p.d.Skip()
		}
		if seen {
			return steward.InvalidRecord(p.d.N+1, p.d.R.Line(), errors.New(`"Findings" appears twice`))
		}
		seen = true
		return p.array()
	})
	if err != nil {
		return err
	}
	if !seen {
		return steward.Errorf(steward.CodeInvalid, `the document has no "Findings" array`)
	}
	return p.d.End("document")
}

func (p *parse) array() error {
	return p.d.Elements(`'[' (the findings array)`, "a finding", p.record)
}

func (p *parse) record(v jsonstream.Value) error {
	if err := p.d.Record(p.ctx, v, "a finding object"); err != nil {
		return err
	}
	n := p.d.N
	var f Finding
	if err := jsonstream.UnmarshalRecord(n, v, &f); err != nil {
		return err
	}
	o, err := f.Observation()
	if err != nil {
		if id := strings.TrimSpace(f.ID); id != "" && len(id) <= 512 {
			err = fmt.Errorf("finding %q: %s", id, steward.ErrorMessage(err))
		}
		return steward.InvalidRecord(n, v.Line, err)
	}
	return p.yield(o)
}
