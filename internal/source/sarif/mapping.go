package sarif

import (
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward"
)

type message struct {
	Text      string   `json:"text"`
	Markdown  string   `json:"markdown"`
	ID        string   `json:"id"`
	Arguments []string `json:"arguments"`
}

type properties struct {
	// SecuritySeverity is GitHub's convention: a CVSS-like score 0.0–10.0,
	// as a string ("7.5") or a number.
	SecuritySeverity json.RawMessage `json:"security-severity"`
	Tags             []string        `json:"tags"`
}

type rule struct {
	ID                   string             `json:"id"`
	Name                 string             `json:"name"`
	ShortDescription     message            `json:"shortDescription"`
	FullDescription      message            `json:"fullDescription"`
	Help                 message            `json:"help"`
	HelpURI              string             `json:"helpUri"`
	MessageStrings       map[string]message `json:"messageStrings"`
	DefaultConfiguration struct {
		Level string `json:"level"`
	} `json:"defaultConfiguration"`
	Properties properties `json:"properties"`
}

type component struct {
	Name     string  `json:"name"`
	FullName string  `json:"fullName"`
	Rules    []*rule `json:"rules"`
}

type tool struct {
	Driver     component   `json:"driver"`
	Extensions []component `json:"extensions"`
}

type artifactLocation struct {
	URI       string `json:"uri"`
	URIBaseID string `json:"uriBaseId"`
	Index     *int   `json:"index"`
}

type reportingDescriptorReference struct {
	ID            string `json:"id"`
	Index         *int   `json:"index"`
	ToolComponent *struct {
		Index *int `json:"index"`
	} `json:"toolComponent"`
}

type result struct {
	RuleID    string                        `json:"ruleId"`
	RuleIndex *int                          `json:"ruleIndex"`
	Rule      *reportingDescriptorReference `json:"rule"`
	Kind      string                        `json:"kind"`
	Level     string                        `json:"level"`
	Message   message                       `json:"message"`
	Locations []struct {
		PhysicalLocation *struct {
			ArtifactLocation *artifactLocation `json:"artifactLocation"`
			Region           *struct {
				StartLine int `json:"startLine"`
			} `json:"region"`
		} `json:"physicalLocation"`
	} `json:"locations"`
	Suppressions []struct {
		Status        string `json:"status"`
		Justification string `json:"justification"`
	} `json:"suppressions"`
	BaselineState string     `json:"baselineState"`
	Properties    properties `json:"properties"`
}

// runInfo is what a run says about its results.
type runInfo struct {
	index     int
	tool      string // driver name, lower-cased: the key prefix
	driver    []*rule
	ext       [][]*rule
	rules     map[string]*rule // by ID; the driver's win over extensions'
	artifacts []artifactLocation
	bases     map[string]artifactLocation
	vcp       []struct {
		RepositoryURI string `json:"repositoryUri"`
		MappedTo      *struct {
			URIBaseID string `json:"uriBaseId"`
		} `json:"mappedTo"`
	}
	at  time.Time
	sev map[string]steward.Severity // by rule ID: the highest of its results
}

var spaces = regexp.MustCompile(`\s+`)

func (r *runInfo) setTool(t *tool) {
	r.tool = spaces.ReplaceAllString(strings.ToLower(strings.TrimSpace(t.Driver.Name)), "-")
	r.driver = t.Driver.Rules
	for i := len(t.Extensions) - 1; i >= 0; i-- {
		r.ext = append([][]*rule{t.Extensions[i].Rules}, r.ext...)
		for _, rl := range t.Extensions[i].Rules {
			if rl != nil && rl.ID != "" {
				r.rules[rl.ID] = rl
			}
		}
	}
	for _, rl := range t.Driver.Rules {
		if rl != nil && rl.ID != "" {
			r.rules[rl.ID] = rl
		}
	}
}

// lookup finds the rule of a result: by index (ruleIndex, rule.index,
// within the extension rule.toolComponent.index names), else by ID, else
// by the ID's hierarchical parents ("a/b/c" → "a/b" → "a").
func (r *runInfo) lookup(res *result) (string, *rule, error) {
	id := res.RuleID
	idx := res.RuleIndex
	list := r.driver
	if res.Rule != nil {
		if id == "" {
			id = res.Rule.ID
		}
		if idx == nil {
			idx = res.Rule.Index
		}
		if tc := res.Rule.ToolComponent; tc != nil && tc.Index != nil {
			if *tc.Index < 0 || *tc.Index >= len(r.ext) {
				return "", nil, steward.Errorf(steward.CodeInvalid, "rule.toolComponent.index %d names no entry of tool.extensions", *tc.Index)
			}
			list = r.ext[*tc.Index]
		}
	}
	if idx != nil && *idx >= 0 && *idx < len(list) && list[*idx] != nil {
		if rl := list[*idx]; id == "" || rl.ID == id {
			return rl.ID, rl, nil
		}
	}
	id = strings.TrimSpace(id)
	if id == "" {
		return "", nil, steward.Errorf(steward.CodeInvalid, "ruleId is missing (the check, part of the recommendation key)")
	}
	for q := id; q != ""; {
		if rl, ok := r.rules[q]; ok {
			return id, rl, nil
		}
		i := strings.LastIndexByte(q, '/')
		if i < 0 {
			break
		}
		q = q[:i]
	}
	return id, &rule{ID: id}, nil
}

// severity records the severity res gives its rule, keeping the highest.
func (r *runInfo) severity(res *result) error {
	id, rl, err := r.lookup(res)
	if err != nil {
		return err
	}
	if res.Kind == "informational" {
		return nil
	}
	failing := res.Kind == "" || res.Kind == "fail" || res.Kind == "review" || res.Kind == "open"
	sev, err := severity(res, rl, failing)
	if err != nil {
		return err
	}
	if sev.Rank() > r.sev[id].Rank() {
		r.sev[id] = sev
	}
	return nil
}

// observations maps one result; nil for an informational result.
func (r *runInfo) observations(res *result) ([]steward.Observation, error) {
	id, rl, err := r.lookup(res)
	if err != nil {
		return nil, err
	}
	status, prefix := steward.StatusUnhealthy, ""
	switch res.Kind {
	case "", "fail":
	case "review", "open":
		prefix = res.Kind + ": "
	case "pass":
		status = steward.StatusHealthy
	case "notApplicable":
		status = steward.StatusNotApplicable
	case "informational":
		return nil, nil
	default:
		return nil, steward.Errorf(steward.CodeInvalid, "kind %q is not one of pass, fail, review, open, notApplicable, informational", res.Kind)
	}
	sev := r.sev[id]
	if sev == "" {
		return nil, steward.Errorf(steward.CodeInvalid, "no severity for rule %q", id) // severity ran first
	}
	text := res.Message.Text
	if text == "" && res.Message.ID != "" {
		text = format(rl.MessageStrings[res.Message.ID].Text, res.Message.Arguments)
	}
	if text == "" {
		text = res.Message.Markdown
	}
	switch {
	case res.BaselineState == "absent":
		status, prefix = steward.StatusHealthy, "fixed (absent since the baseline): "
	case suppressed(res) != nil:
		status, prefix = steward.StatusNotApplicable, "suppressed: "
		if j := strings.TrimSpace(*suppressed(res)); j != "" {
			text = j
		}
	}
	rec := r.recommendation(id, rl, sev)

	type loc struct {
		al   *artifactLocation
		line int
	}
	var locs []loc
	for _, l := range res.Locations {
		if l.PhysicalLocation == nil || l.PhysicalLocation.ArtifactLocation == nil {
			continue
		}
		line := 0
		if l.PhysicalLocation.Region != nil {
			line = l.PhysicalLocation.Region.StartLine
		}
		locs = append(locs, loc{l.PhysicalLocation.ArtifactLocation, line})
	}
	var out []steward.Observation
	add := func(res steward.Resource, reason string) error {
		o := steward.Observation{Resource: res, Recommendation: rec, Status: status, StatusReason: reason, ObservedAt: r.at}
		if err := o.Validate(); err != nil {
			return err
		}
		out = append(out, o)
		return nil
	}
	if len(locs) == 0 {
		repo := r.repo("")
		return out, add(steward.Resource{ID: "/repos/" + repo, Name: repo, Type: "repository", Cloud: steward.CloudOther}, prefix+text)
	}
	done := map[string]bool{}
	for i, l := range locs {
		id, name, err := r.resourceID(l.al)
		if err != nil {
			return nil, steward.Errorf(steward.CodeInvalid, "locations[%d]: %s", i, steward.ErrorMessage(err))
		}
		if done[id] {
			continue
		}
		done[id] = true
		reason := prefix + text
		if l.line > 0 {
			reason = fmt.Sprintf("%sline %d: %s", prefix, l.line, text)
		}
		if err := add(steward.Resource{ID: id, Name: name, Type: "file", Cloud: steward.CloudOther}, reason); err != nil {
			return nil, steward.Errorf(steward.CodeInvalid, "locations[%d]: %s", i, steward.ErrorMessage(err))
		}
	}
	return out, nil
}

// suppressed returns the justification of an accepted suppression (one
// whose status is "accepted" or absent), nil if none.
func suppressed(res *result) *string {
	for i := range res.Suppressions {
		if s := res.Suppressions[i].Status; s == "" || s == "accepted" {
			return &res.Suppressions[i].Justification
		}
	}
	return nil
}

var placeholder = regexp.MustCompile(`\{(\d+)\}`)

// format fills a SARIF message string's {0}, {1}... placeholders.
func format(s string, args []string) string {
	return placeholder.ReplaceAllStringFunc(s, func(m string) string {
		i, _ := strconv.Atoi(m[1 : len(m)-1])
		if i < len(args) {
			return args[i]
		}
		return m
	})
}

func (r *runInfo) recommendation(id string, rl *rule, sev steward.Severity) steward.Recommendation {
	rec := steward.Recommendation{
		Key:         r.tool + ":" + id,
		DisplayName: firstNonEmpty(rl.ShortDescription.Text, rl.Name, id),
		Description: firstNonEmpty(rl.FullDescription.Text, rl.FullDescription.Markdown),
		Severity:    sev,
		Source:      "sarif:" + r.tool,
	}
	if rec.Description == "" && rec.DisplayName != rl.ShortDescription.Text {
		rec.Description = rl.ShortDescription.Text
	}
	rem := firstNonEmpty(rl.Help.Text, rl.Help.Markdown)
	if u := strings.TrimSpace(rl.HelpURI); u != "" {
		if rem != "" {
			rem += "\n\n"
		}
		rem += "References:\n- " + u
	}
	rec.Remediation = rem
	var cats []string
	for _, t := range rl.Properties.Tags {
		if t = strings.TrimSpace(t); t != "" && !severityWord(t) {
			cats = append(cats, t)
		}
	}
	rec.Category = strings.Join(cats, ", ")
	return rec
}

func severityWord(s string) bool {
	switch strings.ToLower(s) {
	case "critical", "high", "medium", "moderate", "low", "info", "informational", "unknown",
		"error", "warning", "note", "none":
		return true
	}
	return false
}

// severity: a security-severity score (the result's, else the rule's)
// when present; else the level: the result's when it reports a failure,
// else the rule's default, else "warning" (SARIF's default).
func severity(res *result, rl *rule, failing bool) (steward.Severity, error) {
	for _, raw := range []json.RawMessage{res.Properties.SecuritySeverity, rl.Properties.SecuritySeverity} {
		if len(raw) == 0 || string(raw) == "null" {
			continue
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			s = string(raw)
		}
		score, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || score < 0 || score > 10 {
			return "", steward.Errorf(steward.CodeInvalid, "properties.security-severity %s is not a score from 0.0 to 10.0", raw)
		}
		switch {
		case score >= 9:
			return steward.SeverityCritical, nil
		case score >= 7:
			return steward.SeverityHigh, nil
		case score >= 4:
			return steward.SeverityMedium, nil
		}
		return steward.SeverityLow, nil
	}
	level := rl.DefaultConfiguration.Level
	if failing && res.Level != "" {
		level = res.Level
	}
	switch level {
	case "error":
		return steward.SeverityHigh, nil
	case "warning", "":
		return steward.SeverityMedium, nil
	case "note", "none":
		return steward.SeverityLow, nil
	}
	return "", steward.Errorf(steward.CodeInvalid, "level %q is not one of error, warning, note, none", level)
}

// repo names the repository of artifacts under base: the
// versionControlProvenance entry mapped to base, else the first one; as
// one path segment ("github.com_org_repo"), "unknown" when the run names
// none.
func (r *runInfo) repo(base string) string {
	uri := ""
	for _, v := range r.vcp {
		if v.MappedTo != nil && base != "" && v.MappedTo.URIBaseID == base {
			uri = v.RepositoryURI
			break
		}
	}
	if uri == "" && len(r.vcp) > 0 {
		uri = r.vcp[0].RepositoryURI
	}
	if name := RepoName(uri); name != "" {
		return name
	}
	return "unknown"
}

// RepoName turns a repository URI (https://github.com/org/repo.git,
// git@github.com:org/repo) into one ID segment, "github.com_org_repo":
// scheme, credentials, query and ".git" dropped, "/" replaced by "_".
func RepoName(uri string) string {
	uri = strings.TrimSpace(uri)
	if uri == "" {
		return ""
	}
	var p string
	if u, err := url.Parse(uri); err == nil && u.Host != "" {
		p = strings.ToLower(u.Host) + u.Path
	} else if at := strings.IndexByte(uri, '@'); at >= 0 && strings.Contains(uri[at:], ":") {
		// scp-like: git@github.com:org/repo.git
		host, rest, _ := strings.Cut(uri[at+1:], ":")
		p = strings.ToLower(host) + "/" + rest
	} else {
		p = uri
	}
	p = strings.TrimSuffix(strings.Trim(p, "/"), ".git")
	return strings.ReplaceAll(strings.Trim(p, "/"), "/", "_")
}

// resourceID maps an artifact location to /repos/<repo>/files/<path>; see
// ResourceID.
func (r *runInfo) resourceID(al *artifactLocation) (id, name string, err error) {
	loc := *al
	if loc.URI == "" && loc.Index != nil {
		if *loc.Index < 0 || *loc.Index >= len(r.artifacts) {
			return "", "", steward.Errorf(steward.CodeInvalid, "artifactLocation.index %d names no entry of run.artifacts", *loc.Index)
		}
		a := r.artifacts[*loc.Index]
		loc.URI = a.URI
		if loc.URIBaseID == "" {
			loc.URIBaseID = a.URIBaseID
		}
	}
	p := filePath(loc.URI, r.bases)
	if p == "" {
		return "", "", steward.Errorf(steward.CodeInvalid, "artifactLocation.uri is missing (the file the result is about)")
	}
	return ResourceID(r.repo(loc.URIBaseID), p), p, nil
}

// ResourceID is the ID of a file in a repository, shared by the SARIF and
// Checkov parsers: /repos/<repo>/files/<path>, repo one segment (RepoName,
// or "unknown"), path relative to the repository root and kept whole, so
// /repos/<repo>/files/<dir> is the scope of a directory.
func ResourceID(repo, filePath string) string {
	return "/repos/" + repo + "/files/" + filePath
}

// filePath makes a SARIF artifact URI a clean repository-relative path: a
// relative URI stays relative to its uriBaseId (which names the checkout
// on the scanning machine, not the repository); an absolute file: URI is
// made relative to an originalUriBaseIds base it lies under; other URIs
// keep host and path.
func filePath(uri string, bases map[string]artifactLocation) string {
	uri = strings.TrimSpace(strings.ReplaceAll(uri, `\`, "/"))
	if uri == "" {
		return ""
	}
	p := uri
	if u, err := url.Parse(uri); err == nil {
		switch {
		case u.Scheme == "file":
			p = u.Path
			for _, b := range bases {
				bu, err := url.Parse(b.URI)
				if err != nil || bu.Scheme != "file" || bu.Path == "" {
					continue
				}
				root := strings.TrimSuffix(bu.Path, "/") + "/"
				if strings.HasPrefix(p, root) {
					p = strings.TrimPrefix(p, root)
					break
				}
			}
		case u.Scheme != "" && len(u.Scheme) > 1: // "C:/x" is a Windows path, not a scheme
			p = u.Host + u.Path
		default:
			p = u.Path
			if p == "" {
				p = uri
			}
		}
	}
	p = path.Clean("/" + p)
	return strings.TrimPrefix(p, "/")
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s = strings.TrimSpace(s); s != "" {
			return s
		}
	}
	return ""
}
