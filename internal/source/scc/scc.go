// Package scc reads Google Security Command Center (SCC) findings: live,
// through the v2 API's ListFindings (Puller, see New), and from files of
// SCC's JSON export format (Parser). Both read the same record, a
// ListFindingsResult ({"finding": {...}, "resource": {...}}), and map it
// with the same function (Map), so a finding imported from a file and the
// same finding pulled live become the same observation.
//
// Mapping (docs/sources.md, "Google Security Command Center", has the full
// table):
//
//   - recommendation key: "scc:" + finding.category (e.g.
//     "scc:PUBLIC_BUCKET_ACL"). A category names one check whichever SCC
//     source (Security Health Analytics, Event Threat Detection, ...) and
//     whichever organization reports it, unlike the finding's source ID,
//     which is a number per organization.
//   - display name: the category humanized ("PUBLIC_BUCKET_ACL" → "Public
//     bucket ACL"); categories that are already prose ("Persistence: IAM
//     Anomalous Grant") stay as they are.
//   - status: state ACTIVE → Unhealthy, INACTIVE → Healthy; an ACTIVE finding
//     muted in SCC (mute MUTED) → NotApplicable with the reason "muted in
//     Security Command Center": a user decided to accept it there, as with
//     a suppressed OCSF finding. STATE_UNSPECIFIED is refused.
//   - severity: CRITICAL/HIGH/MEDIUM/LOW as is; SEVERITY_UNSPECIFIED → Low
//     (the least urgent level Steward tracks; dropping the finding would
//     hide it).
//   - resource ID: /gcp/projects/<project ID>/<resource type>/<full
//     resource name without its leading "//">, e.g.
//     /gcp/projects/web-prod/google.cloud.storage.Bucket/storage.googleapis.com/web-prod-assets.
//     The project ID is the resource's gcp_metadata.project_display_name
//     (SCC's name for the project ID), else the project number. Resources
//     outside any project (an organization, a folder) are under
//     /gcp/organizations/<org number>/... .
//   - tags: the finding's security marks (SCC's own key/value labels, e.g.
//     owner=alice@example.com). SCC's ListFindings does not return the
//     resource's labels.
//
// Findings on AWS or Azure resources (SCC Enterprise's multicloud
// findings) are skipped: those clouds have their own sources.
package scc

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"cloud.google.com/go/securitycenter/apiv2/securitycenterpb"

	"github.com/stewardhq/steward"
)

// Source is Recommendation.Source of every SCC observation.
const Source = "scc"

// Result is one ListFindingsResult: a finding and its resource.
type Result = securitycenterpb.ListFindingsResponse_ListFindingsResult

// Container is where a finding's resource lives: a GCP project, or for
// resources outside any project the organization. It is the unit a pull
// reads.
type Container struct {
	// ID is the project ID ("web-prod"; the project number when SCC did not
	// give the ID) or "organizations/<number>".
	ID    string
	Scope steward.Scope
}

// Map maps one result to an observation and the container its resource
// lives in. skip is true (and the observation zero) for a finding on a
// non-GCP resource. Errors are CodeInvalid and name the field at fault.
func Map(r *Result) (obs steward.Observation, where Container, skip bool, err error) {
	f := r.GetFinding()
	if f == nil {
		return obs, where, false, steward.Errorf(steward.CodeInvalid, "finding is missing")
	}
	res := r.GetResource()
	switch p := res.GetCloudProvider(); p {
	case securitycenterpb.CloudProvider_CLOUD_PROVIDER_UNSPECIFIED, securitycenterpb.CloudProvider_GOOGLE_CLOUD_PLATFORM:
	default:
		return obs, where, true, nil
	}
	if res.GetAwsMetadata() != nil || res.GetAzureMetadata() != nil {
		return obs, where, true, nil
	}
	category := strings.TrimSpace(f.GetCategory())
	if category == "" {
		return obs, where, false, steward.Errorf(steward.CodeInvalid, "finding.category is missing")
	}
	name := strings.TrimSpace(f.GetResourceName())
	if name == "" {
		name = strings.TrimSpace(res.GetName())
	}
	if name == "" {
		return obs, where, false, steward.Errorf(steward.CodeInvalid, "finding.resourceName is missing")
	}

	var status steward.AssessmentStatus
	reason := ""
	switch f.GetState() {
	case securitycenterpb.Finding_ACTIVE:
		status = steward.StatusUnhealthy
		if f.GetMute() == securitycenterpb.Finding_MUTED {
			status = steward.StatusNotApplicable
			reason = "muted in Security Command Center"
			if who := strings.TrimSpace(f.GetMuteInitiator()); who != "" {
				reason += " (" + who + ")"
			}
		}
	case securitycenterpb.Finding_INACTIVE:
		status = steward.StatusHealthy
	default:
		return obs, where, false, steward.Errorf(steward.CodeInvalid, "finding.state %s is not ACTIVE or INACTIVE", f.GetState())
	}

	sev := steward.SeverityLow
	switch f.GetSeverity() {
	case securitycenterpb.Finding_CRITICAL:
		sev = steward.SeverityCritical
	case securitycenterpb.Finding_HIGH:
		sev = steward.SeverityHigh
	case securitycenterpb.Finding_MEDIUM:
		sev = steward.SeverityMedium
	}

	where, err = container(res.GetGcpMetadata(), name)
	if err != nil {
		return obs, where, false, err
	}
	typ := strings.TrimSpace(res.GetType())
	id := string(where.Scope) + "/" + seg(firstNonEmpty(typ, "unknown")) + "/" + strings.TrimLeft(name, "/")

	var tags map[string]string
	if marks := f.GetSecurityMarks().GetMarks(); len(marks) > 0 {
		tags = make(map[string]string, len(marks))
		for k, v := range marks {
			tags[k] = v
		}
	}
	obs = steward.Observation{
		Resource: steward.Resource{
			ID:     id,
			Name:   firstNonEmpty(res.GetDisplayName(), lastSegment(name)),
			Type:   typ,
			Cloud:  steward.CloudGCP,
			Region: strings.TrimSpace(res.GetLocation()),
			Tags:   tags,
		},
		Recommendation: steward.Recommendation{
			Key:         Source + ":" + category,
			DisplayName: Humanize(category),
			Description: strings.TrimSpace(f.GetDescription()),
			Remediation: remediation(f.GetNextSteps(), f.GetExternalUri()),
			Severity:    sev,
			Category:    findingClass(f.GetFindingClass()),
			Source:      Source,
		},
		Status:       status,
		StatusReason: reason,
		ObservedAt:   observedAt(f),
	}
	if err := obs.Validate(); err != nil {
		return steward.Observation{}, where, false, err
	}
	return obs, where, false, nil
}

// container finds the project (or organization) of a resource from its
// gcp_metadata, falling back to a "projects/<x>" or "organizations/<n>"
// part of the resource name.
func container(md *securitycenterpb.GcpMetadata, name string) (Container, error) {
	project := strings.TrimSpace(md.GetProjectDisplayName())
	if project == "" {
		project = afterLast(md.GetProject(), "projects/")
	}
	if project == "" {
		project = pathValue(name, "projects")
	}
	if project != "" {
		return Container{ID: project, Scope: steward.Scope("/gcp/projects/" + seg(project))}, nil
	}
	org := afterLast(md.GetOrganization(), "organizations/")
	if o := strings.TrimSpace(md.GetOrganization()); org == "" && o != "" && !strings.Contains(o, "/") {
		org = o
	}
	if org == "" {
		org = pathValue(name, "organizations")
	}
	if org != "" {
		return Container{ID: "organizations/" + org, Scope: steward.Scope("/gcp/organizations/" + seg(org))}, nil
	}
	return Container{}, steward.Errorf(steward.CodeInvalid, "resource.gcpMetadata.project is missing (the resource's project) and the resource is not in an organization")
}

// afterLast returns what follows the last marker in s, up to the next "/".
func afterLast(s, marker string) string {
	i := strings.LastIndex(s, marker)
	if i < 0 {
		return ""
	}
	v, _, _ := strings.Cut(s[i+len(marker):], "/")
	return strings.TrimSpace(v)
}

// pathValue returns the part after a "/<key>/" segment of a resource name.
func pathValue(name, key string) string {
	parts := strings.Split(name, "/")
	for i := 0; i+1 < len(parts); i++ {
		if parts[i] == key && parts[i+1] != "" {
			return parts[i+1]
		}
	}
	return ""
}

func lastSegment(name string) string {
	name = strings.TrimRight(name, "/")
	return name[strings.LastIndex(name, "/")+1:]
}

func seg(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "/", "_") }

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}

func observedAt(f *securitycenterpb.Finding) time.Time {
	for _, ts := range []interface {
		IsValid() bool
		AsTime() time.Time
	}{f.GetEventTime(), f.GetCreateTime()} {
		if ts != nil && ts.IsValid() && !ts.AsTime().IsZero() && ts.AsTime().Unix() > 0 {
			return ts.AsTime().UTC()
		}
	}
	return time.Time{}
}

func remediation(next, uri string) string {
	next, uri = strings.TrimSpace(next), strings.TrimSpace(uri)
	switch {
	case uri == "":
		return next
	case next == "":
		return "See " + uri
	}
	return fmt.Sprintf("%s\n\nSee %s", next, uri)
}

func findingClass(c securitycenterpb.Finding_FindingClass) string {
	if c == securitycenterpb.Finding_FINDING_CLASS_UNSPECIFIED {
		return ""
	}
	return Humanize(c.String())
}

// acronyms stay upper case when a category is humanized.
var acronyms = map[string]bool{
	"ACL": true, "API": true, "CMEK": true, "CSEK": true, "DNS": true, "GKE": true, "HTTP": true,
	"HTTPS": true, "IAM": true, "IP": true, "KMS": true, "MFA": true, "OS": true, "RDP": true,
	"SCC": true, "SQL": true, "SSH": true, "SSL": true, "TLS": true, "VM": true, "VPC": true,
	"2SV": true, "DLP": true, "CIS": true, "URL": true, "SA": true,
}

// Humanize turns an SCC category or enum name such as PUBLIC_BUCKET_ACL into
// "Public bucket ACL". A name with lower-case letters or spaces is prose
// already and is returned as is.
func Humanize(s string) string {
	if strings.ContainsFunc(s, func(r rune) bool { return unicode.IsLower(r) || r == ' ' }) {
		return s
	}
	words := strings.FieldsFunc(s, func(r rune) bool { return r == '_' || r == '-' })
	for i, w := range words {
		switch {
		case acronyms[w]:
		case i == 0:
			_, n := utf8.DecodeRuneInString(w)
			words[i] = w[:n] + strings.ToLower(w[n:])
		default:
			words[i] = strings.ToLower(w)
		}
	}
	return strings.Join(words, " ")
}
