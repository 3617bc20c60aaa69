package steward

import (
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Cloud is where a resource lives.
type Cloud string

// The clouds Steward knows. Anything else is CloudOther.
const (
	CloudAzure Cloud = "azure"
	CloudAWS   Cloud = "aws"
	CloudGCP   Cloud = "gcp"
	CloudOther Cloud = "other"
)

// ParseCloud maps a source's spelling of a cloud onto a Cloud. Empty input is
// CloudOther; an unknown name is an error so typos are caught.
func ParseCloud(s string) (Cloud, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "azure":
		return CloudAzure, nil
	case "aws", "amazon":
		return CloudAWS, nil
	case "gcp", "google":
		return CloudGCP, nil
	case "", "other", "onprem", "on-premises", "kubernetes", "github":
		return CloudOther, nil
	}
	return "", Errorf(CodeInvalid, "unknown cloud %q (want azure, aws, gcp or other)", s)
}

// Severity is a recommendation's severity.
type Severity string

// Severities, lowest first. Critical is allowed from sources that have it.
const (
	SeverityLow      Severity = "Low"
	SeverityMedium   Severity = "Medium"
	SeverityHigh     Severity = "High"
	SeverityCritical Severity = "Critical"
)

// Severities lists every severity, lowest first.
var Severities = []Severity{SeverityLow, SeverityMedium, SeverityHigh, SeverityCritical}

// ParseSeverity accepts any letter case of the four severities. Sources that
// have an "informational" level map it to Low: it is the least urgent level
// Steward tracks, and dropping findings would hide them.
func ParseSeverity(s string) (Severity, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "low", "informational", "info":
		return SeverityLow, nil
	case "medium", "moderate":
		return SeverityMedium, nil
	case "high":
		return SeverityHigh, nil
	case "critical":
		return SeverityCritical, nil
	}
	return "", Errorf(CodeInvalid, "unknown severity %q (want Low, Medium, High or Critical)", s)
}

// Rank orders severities: Low 1 … Critical 4, unknown 0.
func (s Severity) Rank() int {
	switch s {
	case SeverityLow:
		return 1
	case SeverityMedium:
		return 2
	case SeverityHigh:
		return 3
	case SeverityCritical:
		return 4
	}
	return 0
}

// AssessmentStatus is the outcome of one recommendation on one resource.
type AssessmentStatus string

// The assessment statuses.
const (
	StatusHealthy       AssessmentStatus = "Healthy"
	StatusUnhealthy     AssessmentStatus = "Unhealthy"
	StatusNotApplicable AssessmentStatus = "NotApplicable"
)

// ParseStatus accepts the statuses in any letter case, plus the common
// spellings of scanners (pass/fail, compliant/noncompliant).
func ParseStatus(s string) (AssessmentStatus, error) {
	switch strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), " ", "")) {
	case "healthy", "pass", "passed", "compliant", "resolved":
		return StatusHealthy, nil
	case "unhealthy", "fail", "failed", "noncompliant", "non_compliant":
		return StatusUnhealthy, nil
	case "notapplicable", "not_applicable", "n/a", "skipped", "manual", "muted":
		return StatusNotApplicable, nil
	}
	return "", Errorf(CodeInvalid, "unknown status %q (want Healthy, Unhealthy or NotApplicable)", s)
}

// Resource is a cloud or on-premises thing with an ID.
type Resource struct {
	// ID is the resource's own identifier (Azure resource ID, AWS ARN under
	// /aws/accounts/..., etc.), as the source spelled it.
	ID        string            `json:"id"`
	Name      string            `json:"name,omitempty"`
	Type      string            `json:"type,omitempty"`
	Cloud     Cloud             `json:"cloud"`
	Region    string            `json:"region,omitempty"`
	Tags      map[string]string `json:"tags,omitempty"`
	FirstSeen time.Time         `json:"first_seen,omitzero"`
	LastSeen  time.Time         `json:"last_seen,omitzero"`
}

// Recommendation is a security check.
type Recommendation struct {
	// Key is stable across scans: Defender's assessment key, Prowler's check
	// ID, a SARIF rule ID.
	Key         string   `json:"key"`
	DisplayName string   `json:"display_name"`
	Description string   `json:"description,omitempty"`
	Remediation string   `json:"remediation,omitempty"`
	Severity    Severity `json:"severity"`
	Category    string   `json:"category,omitempty"`
	Source      string   `json:"source,omitempty"`
}

// Assessment is one recommendation evaluated on one resource.
type Assessment struct {
	ID                int64            `json:"id"`
	RecommendationKey string           `json:"recommendation_key"`
	ResourceID        string           `json:"resource_id"`
	Status            AssessmentStatus `json:"status"`
	StatusReason      string           `json:"status_reason,omitempty"`
	Severity          Severity         `json:"severity"`
	Cloud             Cloud            `json:"cloud"`
	ResourceName      string           `json:"resource_name,omitempty"`
	ResourceType      string           `json:"resource_type,omitempty"`
	FirstSeen         time.Time        `json:"first_seen"`
	LastSeen          time.Time        `json:"last_seen"`
	StatusChangedAt   time.Time        `json:"status_changed_at"`
	// AssignmentID is the active assignment on this assessment, 0 if none.
	AssignmentID int64 `json:"assignment_id,omitempty"`
}

// Observation is one assessment as a source reported it: the unit of ingest.
// The resource and recommendation are created on first sight and updated
// when a later observation says more about them.
type Observation struct {
	Resource       Resource
	Recommendation Recommendation
	Status         AssessmentStatus
	StatusReason   string
	// ObservedAt is when the source evaluated the assessment; zero means
	// "at import time".
	ObservedAt time.Time
}

// Validate checks the fields every observation needs. The message names the
// field so a user can fix the record.
func (o *Observation) Validate() error {
	switch {
	case strings.TrimSpace(o.Resource.ID) == "":
		return Errorf(CodeInvalid, "resource.id is missing")
	case len(o.Resource.ID) > 2048:
		return Errorf(CodeInvalid, "resource.id is longer than 2048 characters")
	case strings.TrimSpace(o.Recommendation.Key) == "":
		return Errorf(CodeInvalid, "recommendation.key is missing")
	case len(o.Recommendation.Key) > 512:
		return Errorf(CodeInvalid, "recommendation.key is longer than 512 characters")
	case o.Recommendation.Severity.Rank() == 0:
		return Errorf(CodeInvalid, "recommendation.severity %q is not one of Low, Medium, High, Critical", o.Recommendation.Severity)
	}
	switch o.Status {
	case StatusHealthy, StatusUnhealthy, StatusNotApplicable:
	default:
		return Errorf(CodeInvalid, "status %q is not one of Healthy, Unhealthy, NotApplicable", o.Status)
	}
	switch o.Resource.Cloud {
	case CloudAzure, CloudAWS, CloudGCP, CloudOther:
	default:
		return Errorf(CodeInvalid, "resource.cloud %q is not one of azure, aws, gcp, other", o.Resource.Cloud)
	}
	for _, f := range []struct{ name, value string }{
		{"resource.id", o.Resource.ID},
		{"resource.name", o.Resource.Name},
		{"resource.type", o.Resource.Type},
		{"resource.region", o.Resource.Region},
		{"recommendation.key", o.Recommendation.Key},
		{"recommendation.display_name", o.Recommendation.DisplayName},
		{"recommendation.category", o.Recommendation.Category},
		{"recommendation.source", o.Recommendation.Source},
	} {
		if !validText(f.value) {
			return Errorf(CodeInvalid, "%s is not valid UTF-8", f.name)
		}
	}
	for k := range o.Resource.Tags {
		if !validText(k) {
			return Errorf(CodeInvalid, "resource.tags has a key that is not valid UTF-8")
		}
	}
	return nil
}

// validText reports whether an identifier or name is valid UTF-8. Decoders
// such as encoding/json replace invalid bytes with U+FFFD, so by the time a
// record is validated the bad bytes may be gone and the replacement
// character is their trace. Accepting it would merge distinct identifiers
// (vm-\xff and vm-\xfe both become vm-\uFFFD) and lose findings.
func validText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, utf8.RuneError)
}

// InvalidRecord reports a bad input record: which one (1-based; line 0 when
// the format has no lines) and what is wrong with it, as a CodeInvalid error
// whose message a user can act on.
func InvalidRecord(record, line int, err error) *Error {
	what := err.Error()
	if e, ok := errors.AsType[*Error](err); ok {
		what = e.Message
	}
	if line > 0 {
		return &Error{Code: CodeInvalid, Message: fmt.Sprintf("record %d (line %d): %s", record, line, what), Err: err}
	}
	return &Error{Code: CodeInvalid, Message: fmt.Sprintf("record %d: %s", record, what), Err: err}
}
