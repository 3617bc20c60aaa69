// Package ocsf parses OCSF 1.x findings (class_uid 2004 "Detection Finding"
// and the other Findings-category classes) as written by Prowler's
// `-M json-ocsf`: a JSON array of finding objects. Whitespace-separated
// finding objects (JSON Lines) are accepted too. Input is streamed one
// finding at a time.
//
// Mapping to Steward (see docs/formats.md for the full table):
//
//   - recommendation key: "<product>:<provider>:<metadata.event_code>", e.g.
//     "prowler:aws:accessanalyzer_enabled". A Prowler check ID is unique only
//     within a provider, and the same check ID may be reused elsewhere.
//   - resource ID: the canonical Steward ID for the cloud, so governance
//     scopes such as /aws/accounts/<acct> or /subscriptions/<id> match (see
//     ResourceID).
//   - one observation per entry of "resources".
//
// Unknown fields are ignored: OCSF is extensible and producers add fields.
package ocsf

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/internal/jsonstream"
)

// Finding is the subset of an OCSF finding that Steward reads.
type Finding struct {
	ClassUID     *int   `json:"class_uid"`
	Message      string `json:"message"`
	Severity     string `json:"severity"`
	SeverityID   *int   `json:"severity_id"`
	Status       string `json:"status"`
	StatusCode   string `json:"status_code"`
	StatusDetail string `json:"status_detail"`
	Time         *int64 `json:"time"`
	TimeDT       string `json:"time_dt"`
	Metadata     struct {
		EventCode string `json:"event_code"`
		Product   struct {
			Name string `json:"name"`
			UID  string `json:"uid"`
		} `json:"product"`
	} `json:"metadata"`
	FindingInfo struct {
		Title string   `json:"title"`
		Desc  string   `json:"desc"`
		Types []string `json:"types"`
	} `json:"finding_info"`
	Unmapped struct {
		Categories []string `json:"categories"`
	} `json:"unmapped"`
	Remediation struct {
		Desc       string   `json:"desc"`
		References []string `json:"references"`
	} `json:"remediation"`
	Cloud struct {
		Provider string `json:"provider"`
		Region   string `json:"region"`
		Account  struct {
			UID string `json:"uid"`
		} `json:"account"`
	} `json:"cloud"`
	Resources []Resource `json:"resources"`
}

// Resource is one entry of a finding's "resources".
type Resource struct {
	UID    string          `json:"uid"`
	Name   string          `json:"name"`
	Type   string          `json:"type"`
	Region string          `json:"region"`
	Labels json.RawMessage `json:"labels"`
	Tags   json.RawMessage `json:"tags"`
	Data   struct {
		Metadata struct {
			ProjectID string `json:"project_id"`
		} `json:"metadata"`
	} `json:"data"`
}

// Parser reads OCSF findings. The zero value is ready to use and safe for
// concurrent use.
type Parser struct{}

// Parse streams one observation per (finding, resource) to yield, in input
// order. Record numbers in errors count findings. Errors are
// *steward.Error with CodeInvalid, except those of yield and ctx.
func (Parser) Parse(ctx context.Context, r io.Reader, yield func(steward.Observation) error) error {
	d := jsonstream.NewDoc(r)
	d.WrapReadErrors = true
	one := func(v jsonstream.Value) error {
		if err := d.Record(ctx, v, "a finding object"); err != nil {
			return err
		}
		var f Finding
		if err := jsonstream.UnmarshalRecord(d.N, v, &f); err != nil {
			return err
		}
		obs, err := f.Observations()
		if err != nil {
			return steward.InvalidRecord(d.N, v.Line, err)
		}
		for _, o := range obs {
			if err := yield(o); err != nil {
				return err
			}
		}
		return nil
	}

	c, err := d.Start("an OCSF JSON array of findings")
	if err != nil {
		return err
	}
	switch c {
	case '[':
		if err := d.Elements("'['", "a finding", one); err != nil {
			return err
		}
		return d.End("array")
	case '{':
		return d.Lines(one)
	}
	return steward.InvalidRecord(1, d.R.Line(), fmt.Errorf("expected a JSON array of OCSF findings, found %s", jsonstream.Describe(c)))
}

// Observations maps the finding to one observation per resource. Errors
// name the OCSF field at fault.
func (f *Finding) Observations() ([]steward.Observation, error) {
	if f.ClassUID != nil && (*f.ClassUID < 2000 || *f.ClassUID > 2999) {
		return nil, steward.Errorf(steward.CodeInvalid, "class_uid %d is not an OCSF finding (want 2004, Detection Finding)", *f.ClassUID)
	}
	code := strings.TrimSpace(f.Metadata.EventCode)
	if code == "" {
		return nil, steward.Errorf(steward.CodeInvalid, "metadata.event_code (the check ID) is missing")
	}
	provider := strings.ToLower(strings.TrimSpace(f.Cloud.Provider))
	if provider == "" {
		return nil, steward.Errorf(steward.CodeInvalid, "cloud.provider is missing")
	}
	cloud, err := steward.ParseCloud(provider)
	if err != nil {
		// Prowler also scans m365, iac, ...: keep them as "other" rather
		// than reject the file.
		cloud = steward.CloudOther
	}
	sev, err := f.severity()
	if err != nil {
		return nil, err
	}
	status, reason, err := f.status()
	if err != nil {
		return nil, err
	}
	if len(f.Resources) == 0 {
		return nil, steward.Errorf(steward.CodeInvalid, "resources is empty (want at least one resource)")
	}
	source := strings.ToLower(strings.TrimSpace(f.Metadata.Product.UID))
	if source == "" {
		source = strings.ToLower(strings.TrimSpace(f.Metadata.Product.Name))
	}
	if source == "" {
		source = "prowler"
	}
	rec := steward.Recommendation{
		Key:         source + ":" + provider + ":" + code,
		DisplayName: f.FindingInfo.Title,
		Description: f.FindingInfo.Desc,
		Remediation: remediation(f.Remediation.Desc, f.Remediation.References),
		Severity:    sev,
		Category:    category(f.Unmapped.Categories, f.FindingInfo.Types),
		Source:      source,
	}
	if rec.DisplayName == "" {
		rec.DisplayName = code
	}
	at := f.observedAt()
	out := make([]steward.Observation, 0, len(f.Resources))
	for i := range f.Resources {
		res := &f.Resources[i]
		id, err := ResourceID(cloud, provider, f.Cloud.Account.UID, f.Cloud.Region, res)
		if err != nil {
			return nil, steward.Errorf(steward.CodeInvalid, "resources[%d]: %s", i, steward.ErrorMessage(err))
		}
		region := res.Region
		if region == "" {
			region = f.Cloud.Region
		}
		tags, err := tags(res)
		if err != nil {
			return nil, steward.Errorf(steward.CodeInvalid, "resources[%d]: %s", i, steward.ErrorMessage(err))
		}
		o := steward.Observation{
			Resource: steward.Resource{
				ID: id, Name: res.Name, Type: res.Type, Cloud: cloud, Region: region, Tags: tags,
			},
			Recommendation: rec,
			Status:         status,
			StatusReason:   reason,
			ObservedAt:     at,
		}
		if err := o.Validate(); err != nil {
			return nil, steward.Errorf(steward.CodeInvalid, "resources[%d]: %s", i, steward.ErrorMessage(err))
		}
		out = append(out, o)
	}
	return out, nil
}

// severityIDs are OCSF's severity_id values, used when "severity" is absent.
var severityIDs = map[int]string{1: "Informational", 2: "Low", 3: "Medium", 4: "High", 5: "Critical", 6: "Critical"}

func (f *Finding) severity() (steward.Severity, error) {
	s := f.Severity
	if s == "" && f.SeverityID != nil {
		s = severityIDs[*f.SeverityID]
	}
	if s == "" {
		return "", steward.Errorf(steward.CodeInvalid, "severity is missing")
	}
	if strings.EqualFold(s, "fatal") {
		return steward.SeverityCritical, nil
	}
	sev, err := steward.ParseSeverity(s)
	if err != nil {
		return "", steward.Errorf(steward.CodeInvalid, "severity %q is not one of Informational, Low, Medium, High, Critical", s)
	}
	return sev, nil
}

// status maps status_code (PASS/FAIL/MANUAL/MUTED). A finding whose
// workflow status is "Suppressed" was muted in the scanner: it is
// NotApplicable whatever its result, as a user decided to accept it.
func (f *Finding) status() (steward.AssessmentStatus, string, error) {
	reason := f.StatusDetail
	if reason == "" {
		reason = f.Message
	}
	if strings.EqualFold(f.Status, "suppressed") {
		return steward.StatusNotApplicable, "muted: " + reason, nil
	}
	if f.StatusCode == "" {
		return "", "", steward.Errorf(steward.CodeInvalid, "status_code is missing (want PASS, FAIL, MANUAL or MUTED)")
	}
	st, err := steward.ParseStatus(f.StatusCode)
	if err != nil {
		return "", "", steward.Errorf(steward.CodeInvalid, "status_code %q is not one of PASS, FAIL, MANUAL, MUTED", f.StatusCode)
	}
	return st, reason, nil
}

// observedAt prefers an RFC 3339 time_dt, then the epoch "time" (seconds,
// or milliseconds as the OCSF schema says), then a zoneless time_dt read as
// UTC. Prowler writes time_dt in the scanner's local time without a zone,
// so "time" is the trustworthy one there.
func (f *Finding) observedAt() time.Time {
	if t, err := time.Parse(time.RFC3339Nano, f.TimeDT); err == nil {
		return t.UTC()
	}
	if f.Time != nil && *f.Time > 0 {
		if *f.Time > 1e11 {
			return time.UnixMilli(*f.Time).UTC()
		}
		return time.Unix(*f.Time, 0).UTC()
	}
	if t, err := time.Parse("2006-01-02T15:04:05.999999999", f.TimeDT); err == nil {
		return t.UTC()
	}
	return time.Time{}
}

func remediation(desc string, refs []string) string {
	var b strings.Builder
	b.WriteString(strings.TrimSpace(desc))
	first := true
	for _, r := range refs {
		if r = strings.TrimSpace(r); r == "" {
			continue
		}
		if first {
			if b.Len() > 0 {
				b.WriteString("\n\n")
			}
			b.WriteString("References:")
			first = false
		}
		b.WriteString("\n- ")
		b.WriteString(r)
	}
	return b.String()
}

func category(categories, types []string) string {
	pick := func(ss []string) string {
		out := make([]string, 0, len(ss))
		for _, s := range ss {
			if s = strings.TrimSpace(s); s != "" && !slices.Contains(out, s) {
				out = append(out, s)
			}
		}
		return strings.Join(out, ", ")
	}
	if c := pick(categories); c != "" {
		return c
	}
	return pick(types)
}

// ResourceID returns the canonical Steward resource ID of res:
//
//   - aws:   /aws/accounts/<account>/regions/<region>/<uid>, the uid (usually
//     an ARN) kept whole as the last part so the ID stays readable and the
//     ARN can be copied out of it. Region is the resource's, else the
//     finding's, else "global".
//   - azure: the uid when it is an Azure resource ID (/subscriptions/...);
//     otherwise /subscriptions/<subscription>/providers/<type>/<uid>.
//   - gcp:   /gcp/projects/<project>/<type>/<name>, project from
//     cloud.account.uid, else data.metadata.project_id; name falls back to uid.
//   - other: /<provider>/accounts/<account>/<uid>.
//
// Path parts other than the final uid have "/" replaced by "_" so that the
// number of segments, which scopes match on, is fixed.
func ResourceID(cloud steward.Cloud, provider, account, findingRegion string, res *Resource) (string, error) {
	uid := strings.TrimSpace(res.UID)
	name := strings.TrimSpace(res.Name)
	if uid == "" {
		uid = name
	}
	if uid == "" {
		return "", steward.Errorf(steward.CodeInvalid, "uid is missing (the resource ID)")
	}
	account = strings.TrimSpace(account)
	switch cloud {
	case steward.CloudAWS:
		if account == "" {
			return "", steward.Errorf(steward.CodeInvalid, "cloud.account.uid is missing (the AWS account ID)")
		}
		region := firstNonEmpty(res.Region, findingRegion, "global")
		return "/aws/accounts/" + seg(account) + "/regions/" + seg(region) + "/" + uid, nil
	case steward.CloudAzure:
		if hasPrefixFold(uid, "/subscriptions/") {
			return uid, nil
		}
		if account == "" {
			return "", steward.Errorf(steward.CodeInvalid, "cloud.account.uid is missing (the Azure subscription ID)")
		}
		typ := firstNonEmpty(res.Type, "unknown")
		// Azure types are namespace/type ("Microsoft.Insights/components"),
		// which reads as a provider path, so "/" is kept here.
		return "/subscriptions/" + seg(account) + "/providers/" + strings.Trim(typ, "/") + "/" + strings.TrimLeft(uid, "/"), nil
	case steward.CloudGCP:
		project := firstNonEmpty(account, res.Data.Metadata.ProjectID)
		if project == "" {
			return "", steward.Errorf(steward.CodeInvalid, "cloud.account.uid is missing (the GCP project ID)")
		}
		typ := firstNonEmpty(res.Type, "unknown")
		return "/gcp/projects/" + seg(project) + "/" + seg(typ) + "/" + seg(firstNonEmpty(name, uid)), nil
	}
	return "/" + seg(provider) + "/accounts/" + seg(firstNonEmpty(account, "unknown")) + "/" + uid, nil
}

func seg(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "/", "_") }

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

// tags reads a resource's tags from "labels" (OCSF 1.x: ["key:value", ...]
// or ["key=value"]; a label without a separator is a tag with an empty
// value) and "tags" (OCSF 1.4: [{"name": k, "value": v}]; objects
// {"k": "v"} are accepted too). "tags" wins on conflicts.
func tags(res *Resource) (map[string]string, error) {
	out := map[string]string{}
	if len(res.Labels) > 0 && string(res.Labels) != "null" {
		var labels []string
		if err := json.Unmarshal(res.Labels, &labels); err == nil {
			for _, l := range labels {
				k, v, ok := strings.Cut(l, ":")
				if !ok {
					k, v, _ = strings.Cut(l, "=")
				}
				if k = strings.TrimSpace(k); k != "" {
					out[k] = strings.TrimSpace(v)
				}
			}
		} else if err := json.Unmarshal(res.Labels, &out); err != nil {
			return nil, steward.Errorf(steward.CodeInvalid, "labels: expected an array of strings")
		}
	}
	if len(res.Tags) > 0 && string(res.Tags) != "null" {
		var kv []struct {
			Name  string `json:"name"`
			Key   string `json:"key"`
			Value string `json:"value"`
		}
		if err := json.Unmarshal(res.Tags, &kv); err == nil {
			for _, t := range kv {
				if k := firstNonEmpty(t.Name, t.Key); k != "" {
					out[k] = t.Value
				}
			}
		} else {
			var m map[string]string
			if err := json.Unmarshal(res.Tags, &m); err != nil {
				return nil, steward.Errorf(steward.CodeInvalid, "tags: expected an array of {\"name\", \"value\"} objects")
			}
			for k, v := range m {
				out[k] = v
			}
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}
