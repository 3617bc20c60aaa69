package defender

import (
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/pull"
)

// finding is one Defender assessment, from either API, before mapping.
type finding struct {
	assessmentID string // the assessment's own ARM ID, for error messages
	key          string
	resourceID   string
	source       string // resourceDetails.Source: Azure, Aws, Gcp, OnPremise, OnPremiseSql
	name, typ    string
	region       string
	status       string
	cause        string
	statusDesc   string
	displayName  string
	severity     string
	description  string
	remediation  string
	categories   []string
	tags         map[string]string
	observedAt   time.Time
}

func findingFromRow(row *graphRow) finding {
	f := finding{
		assessmentID: row.ID,
		key:          row.Key,
		resourceID:   strings.TrimSpace(row.ResourceID),
		source:       row.Source,
		name:         row.ResourceName,
		typ:          row.ResourceType,
		region:       firstNonEmpty(row.ResourceLocation, row.NativeRegion),
		status:       row.Status,
		cause:        row.Cause,
		statusDesc:   row.StatusDescription,
		displayName:  row.DisplayName,
		severity:     row.Severity,
		description:  row.Description,
		remediation:  row.Remediation,
	}
	for _, c := range row.Categories {
		if s, ok := c.(string); ok && s != "" {
			f.categories = append(f.categories, s)
		}
	}
	if len(row.ResourceTags) > 0 {
		f.tags = tagMap(row.ResourceTags)
	}
	if row.TimeGenerated != "" {
		if t, err := time.Parse(time.RFC3339Nano, row.TimeGenerated); err == nil {
			f.observedAt = t.UTC()
		}
	}
	if f.resourceID == "" {
		f.resourceID = resourceFromAssessmentID(f.assessmentID)
	}
	return f
}

// resourceFromAssessmentID cuts "/providers/Microsoft.Security/assessments/<key>"
// off an assessment ID: what is left is the assessed resource.
func resourceFromAssessmentID(id string) string {
	const marker = "/providers/microsoft.security/assessments/"
	if i := strings.LastIndex(strings.ToLower(id), marker); i > 0 {
		return id[:i]
	}
	return ""
}

// subscriptionOf returns the subscription ID of an Azure resource ID, lower case.
func subscriptionOf(id string) string {
	const p = "/subscriptions/"
	if len(id) < len(p) || !strings.EqualFold(id[:len(p)], p) {
		return ""
	}
	rest := id[len(p):]
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		rest = rest[:i]
	}
	return strings.ToLower(rest)
}

// cloudOf maps resourceDetails.Source onto a cloud: Defender assesses AWS
// and GCP resources through its security connectors, and says so there
// ("Aws", "Gcp"); the resource ID stays the one Defender gives (under the
// connector's subscription), so it lies in the unit's scope.
func cloudOf(source string) steward.Cloud {
	switch strings.ToLower(source) {
	case "aws":
		return steward.CloudAWS
	case "gcp":
		return steward.CloudGCP
	case "onpremise", "onpremisesql":
		return steward.CloudOther
	}
	return steward.CloudAzure
}

// nameAndType reads a resource's name and type from its Azure resource ID:
// /subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss1
// is vmss1 of type Microsoft.Compute/virtualMachineScaleSets.
func nameAndType(id string) (name, typ string) {
	parts := strings.Split(strings.Trim(id, "/"), "/")
	last := -1
	for i, p := range parts {
		if strings.EqualFold(p, "providers") {
			last = i
		}
	}
	if last >= 0 && last+1 < len(parts) {
		ns := parts[last+1]
		rest := parts[last+2:]
		typ = ns
		for i := 0; i+1 < len(rest); i += 2 {
			typ += "/" + rest[i]
		}
		if len(rest) > 0 {
			name = rest[len(rest)-1]
		}
		return name, typ
	}
	switch len(parts) {
	case 2:
		return parts[1], "Microsoft.Resources/subscriptions"
	case 4:
		if strings.EqualFold(parts[2], "resourceGroups") {
			return parts[3], "Microsoft.Resources/resourceGroups"
		}
	}
	if len(parts) > 0 {
		name = parts[len(parts)-1]
	}
	return name, ""
}

// observation maps f onto a Steward observation of unit u.
func (f finding) observation(u pull.Unit) (steward.Observation, error) {
	var obs steward.Observation
	if strings.TrimSpace(f.key) == "" {
		return obs, steward.Errorf(steward.CodeInvalid, "the assessment key (name) is missing")
	}
	if f.resourceID == "" {
		return obs, steward.Errorf(steward.CodeInvalid, "resourceDetails.Id is missing")
	}
	if subscriptionOf(f.resourceID) != u.ID {
		return obs, steward.Errorf(steward.CodeInvalid, "resource %q is not in subscription %s", f.resourceID, u.ID)
	}
	var status steward.AssessmentStatus
	switch strings.ToLower(f.status) {
	case "healthy":
		status = steward.StatusHealthy
	case "unhealthy":
		status = steward.StatusUnhealthy
	case "notapplicable":
		status = steward.StatusNotApplicable
	case "":
		return obs, steward.Errorf(steward.CodeInvalid, "status.code is missing")
	default:
		return obs, steward.Errorf(steward.CodeInvalid, "status.code %q is not Healthy, Unhealthy or NotApplicable", f.status)
	}
	if f.severity == "" {
		return obs, steward.Errorf(steward.CodeInvalid, "the recommendation's severity (metadata.severity) is missing")
	}
	sev, err := steward.ParseSeverity(f.severity)
	if err != nil {
		return obs, steward.Errorf(steward.CodeInvalid, "metadata.severity %q is not Low, Medium or High", f.severity)
	}
	name, typ := nameAndType(f.resourceID)
	reason := f.cause
	if f.statusDesc != "" {
		if reason != "" {
			reason += ": "
		}
		reason += f.statusDesc
	}
	obs = steward.Observation{
		Resource: steward.Resource{
			ID:     f.resourceID,
			Name:   firstNonEmpty(f.name, name),
			Type:   firstNonEmpty(f.typ, typ),
			Cloud:  cloudOf(f.source),
			Region: f.region,
			Tags:   f.tags,
		},
		Recommendation: steward.Recommendation{
			Key:         strings.TrimSpace(f.key),
			DisplayName: firstNonEmpty(f.displayName, f.key),
			Description: f.description,
			Remediation: f.remediation,
			Severity:    sev,
			Category:    strings.Join(f.categories, ", "),
			Source:      Source,
		},
		Status:       status,
		StatusReason: reason,
		ObservedAt:   f.observedAt,
	}
	if err := obs.Validate(); err != nil {
		return steward.Observation{}, err
	}
	return obs, nil
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}
