package defender

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// fakeARM answers like Azure Resource Manager for what a Defender pull
// asks: Resource Graph queries (POST /providers/Microsoft.ResourceGraph/resources),
// the Microsoft.Security assessments and assessmentMetadata lists, and the
// subscriptions and resource groups of ARM. It does not run KQL: it tells
// the three queries apart by their table and answers with the rows the
// query would return over its world, built from the REST examples in
// testdata/azure.
type fakeARM struct {
	mu   sync.Mutex
	subs map[string]*fakeSub
	// graphPage and restPage are the server's page sizes (Resource Graph
	// also honours a smaller $top).
	graphPage, restPage int
	// graphForbidden answers 403 to every Resource Graph query.
	graphForbidden bool
	// fault, when set, may answer a request instead of the world: kind is
	// "graph:assessments", "graph:containers", "graph:subscriptions",
	// "assessments", "metadata", "subscription", "resourcegroups",
	// "subscriptions"; page counts from 1 per query (per subscription for
	// the REST lists). It returns 0 to let the request through.
	fault func(w http.ResponseWriter, r *http.Request, kind string, subs []string, page int) bool
	// counts of requests by kind.
	counts map[string]int
	// authSeen records the Authorization headers.
	authSeen []string
}

type fakeSub struct {
	id         string
	tags       map[string]string
	groups     map[string]map[string]string // resource group name → tags
	assessment []map[string]any             // REST shape (Assessments_List items)
	metadata   []map[string]any             // REST shape (AssessmentsMetadata_List items)
	// resourceTags and resourceLocation by lower-case resource ID (what
	// the resources table holds).
	resourceTags     map[string]map[string]string
	resourceLocation map[string]string
}

func newFakeARM() *fakeARM {
	return &fakeARM{subs: map[string]*fakeSub{}, graphPage: 1000, restPage: 100, counts: map[string]int{}}
}

func (f *fakeARM) sub(id string) *fakeSub {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.subs[id]
	if s == nil {
		s = &fakeSub{id: id, tags: map[string]string{}, groups: map[string]map[string]string{},
			resourceTags: map[string]map[string]string{}, resourceLocation: map[string]string{}}
		f.subs[id] = s
	}
	return s
}

// removeAssessment drops the assessment of key on resource (a fix in Azure).
func (f *fakeARM) removeAssessment(subID, key, resource string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.subs[subID]
	s.assessment = slices.DeleteFunc(s.assessment, func(a map[string]any) bool {
		return a["name"] == key && strings.EqualFold(restResourceID(a), resource)
	})
}

func restResourceID(a map[string]any) string {
	props, _ := a["properties"].(map[string]any)
	rd, _ := props["resourceDetails"].(map[string]any)
	for _, k := range []string{"id", "Id", "ResourceId"} {
		if s, ok := rd[k].(string); ok && s != "" {
			return s
		}
	}
	return resourceFromAssessmentID(a["id"].(string))
}

// graphRow is the row assessmentsQuery projects for one assessment.
func (s *fakeSub) graphRow(a map[string]any) map[string]any {
	props, _ := a["properties"].(map[string]any)
	rd, _ := props["resourceDetails"].(map[string]any)
	status, _ := props["status"].(map[string]any)
	var meta map[string]any
	for _, m := range s.metadata {
		if m["name"] == a["name"] {
			meta, _ = m["properties"].(map[string]any)
		}
	}
	rid := restResourceID(a)
	row := map[string]any{
		"id": a["id"], "subscriptionId": s.id, "key": a["name"], "resourceId": rid,
		"source": firstOf(rd, "source", "Source"), "resourceName": firstOf(rd, "ResourceName"),
		"resourceType": firstOf(rd, "ResourceType"), "nativeRegion": firstOf(rd, "Region"),
		"status": firstOf(status, "code"), "cause": firstOf(status, "cause"), "statusDescription": firstOf(status, "description"),
		"displayName": firstOf(props, "displayName"),
		"severity":    firstOf(meta, "severity"), "description": firstOf(meta, "description"),
		"remediation": firstOf(meta, "remediationDescription"), "categories": meta["categories"],
		"timeGenerated": "", "resourceTags": nil, "resourceLocation": nil,
	}
	if t, ok := s.resourceTags[strings.ToLower(rid)]; ok {
		m := map[string]any{}
		for k, v := range t {
			m[k] = v
		}
		row["resourceTags"] = m
	}
	if l, ok := s.resourceLocation[strings.ToLower(rid)]; ok {
		row["resourceLocation"] = l
	}
	return row
}

func firstOf(m map[string]any, keys ...string) string {
	for _, k := range keys {
		if s, ok := m[k].(string); ok && s != "" {
			return s
		}
	}
	return ""
}

func (f *fakeARM) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.authSeen = append(f.authSeen, r.Header.Get("Authorization"))
	f.mu.Unlock()
	if !strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		armError(w, http.StatusUnauthorized, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
		return
	}
	path := strings.TrimSuffix(r.URL.Path, "/")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case r.Method == http.MethodPost && strings.EqualFold(path, "/providers/Microsoft.ResourceGraph/resources"):
		f.serveGraph(w, r)
	case r.Method == http.MethodGet && len(parts) == 1 && parts[0] == "subscriptions":
		f.serveList(w, r, "subscriptions", nil, func() []any {
			var out []any
			for _, id := range f.sortedSubs() {
				s := f.subs[id]
				out = append(out, map[string]any{"id": "/subscriptions/" + id, "subscriptionId": id, "state": "Enabled", "tags": s.tags})
			}
			return out
		})
	case r.Method == http.MethodGet && len(parts) == 2 && parts[0] == "subscriptions":
		s := f.lookup(parts[1])
		if s == nil {
			armError(w, http.StatusNotFound, "SubscriptionNotFound", "The subscription '"+parts[1]+"' could not be found.")
			return
		}
		if f.faulted(w, r, "subscription", []string{s.id}, 1) {
			return
		}
		writeJSON(w, map[string]any{"id": "/subscriptions/" + s.id, "subscriptionId": s.id, "state": "Enabled", "tags": s.tags})
	case r.Method == http.MethodGet && len(parts) == 3 && strings.EqualFold(parts[2], "resourcegroups"):
		s := f.lookup(parts[1])
		f.serveList(w, r, "resourcegroups", []string{parts[1]}, func() []any {
			var out []any
			names := make([]string, 0, len(s.groups))
			for n := range s.groups {
				names = append(names, n)
			}
			slices.Sort(names)
			for _, n := range names {
				out = append(out, map[string]any{"id": "/subscriptions/" + s.id + "/resourceGroups/" + n, "name": n, "tags": s.groups[n]})
			}
			return out
		})
	case r.Method == http.MethodGet && len(parts) == 5 && strings.EqualFold(parts[3], "Microsoft.Security") && strings.EqualFold(parts[4], "assessments"):
		s := f.lookup(parts[1])
		f.serveList(w, r, "assessments", []string{parts[1]}, func() []any {
			var out []any
			for _, a := range s.assessment {
				out = append(out, a)
			}
			return out
		})
	case r.Method == http.MethodGet && len(parts) == 5 && strings.EqualFold(parts[3], "Microsoft.Security") && strings.EqualFold(parts[4], "assessmentMetadata"):
		s := f.lookup(parts[1])
		f.serveList(w, r, "metadata", []string{parts[1]}, func() []any {
			var out []any
			for _, m := range s.metadata {
				out = append(out, m)
			}
			return out
		})
	default:
		armError(w, http.StatusNotFound, "NotFound", "no route for "+r.Method+" "+r.URL.Path)
	}
}

func (f *fakeARM) lookup(id string) *fakeSub {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.subs[strings.ToLower(id)]
}

func (f *fakeARM) sortedSubs() []string {
	ids := make([]string, 0, len(f.subs))
	for id := range f.subs {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func (f *fakeARM) faulted(w http.ResponseWriter, r *http.Request, kind string, subs []string, page int) bool {
	f.mu.Lock()
	f.counts[kind]++
	fault := f.fault
	f.mu.Unlock()
	return fault != nil && fault(w, r, kind, subs, page)
}

// serveList answers an ARM list with nextLink paging (?page=N).
func (f *fakeARM) serveList(w http.ResponseWriter, r *http.Request, kind string, subs []string, items func() []any) {
	if len(subs) == 1 && f.lookup(subs[0]) == nil {
		armError(w, http.StatusNotFound, "SubscriptionNotFound", "The subscription '"+subs[0]+"' could not be found.")
		return
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page < 1 {
		page = 1
	}
	if f.faulted(w, r, kind, subs, page) {
		return
	}
	f.mu.Lock()
	all := items()
	size := f.restPage
	f.mu.Unlock()
	from := min((page-1)*size, len(all))
	to := min(from+size, len(all))
	body := map[string]any{"value": nonNilSlice(all[from:to])}
	if to < len(all) {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(page+1))
		body["nextLink"] = "http://" + r.Host + r.URL.Path + "?" + q.Encode()
		if r.TLS != nil {
			body["nextLink"] = "https://" + r.Host + r.URL.Path + "?" + q.Encode()
		}
	}
	writeJSON(w, body)
}

func nonNilSlice(s []any) []any {
	if s == nil {
		return []any{}
	}
	return s
}

type graphRequest struct {
	Query         string   `json:"query"`
	Subscriptions []string `json:"subscriptions"`
	Options       struct {
		Top          int    `json:"$top"`
		SkipToken    string `json:"$skipToken"`
		ResultFormat string `json:"resultFormat"`
	} `json:"options"`
}

func (f *fakeARM) serveGraph(w http.ResponseWriter, r *http.Request) {
	var req graphRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		armError(w, http.StatusBadRequest, "BadRequest", "body: "+err.Error())
		return
	}
	if req.Options.ResultFormat != "objectArray" {
		armError(w, http.StatusBadRequest, "BadRequest", "resultFormat must be objectArray in this fake")
		return
	}
	var kind string
	switch {
	case strings.HasPrefix(req.Query, "securityresources"):
		kind = "graph:assessments"
	case strings.HasPrefix(req.Query, "resourcecontainers") && strings.Contains(req.Query, "resourcegroups"):
		kind = "graph:containers"
	case strings.HasPrefix(req.Query, "resourcecontainers"):
		kind = "graph:subscriptions"
	default:
		armError(w, http.StatusBadRequest, "InvalidQuery", "unknown query")
		return
	}
	skip, _ := strconv.Atoi(req.Options.SkipToken)
	page := 1
	f.mu.Lock()
	size := f.graphPage
	forbidden := f.graphForbidden
	f.mu.Unlock()
	if req.Options.Top > 0 && req.Options.Top < size {
		size = req.Options.Top
	}
	if skip > 0 {
		page = skip/size + 1
	}
	if forbidden {
		f.faulted(w, r, kind, nil, page) // counted, never answered
		armError(w, http.StatusForbidden, "AuthorizationFailed", "The client does not have authorization to perform action 'Microsoft.ResourceGraph/resources/read'.")
		return
	}
	if f.faulted(w, r, kind, req.Subscriptions, page) {
		return
	}
	f.mu.Lock()
	subs := req.Subscriptions
	if len(subs) == 0 {
		subs = f.sortedSubs()
	}
	var rows []any
	for _, id := range subs {
		s := f.subs[strings.ToLower(id)]
		if s == nil {
			continue
		}
		switch kind {
		case "graph:assessments":
			for _, a := range s.assessment {
				rows = append(rows, s.graphRow(a))
			}
		case "graph:containers":
			rows = append(rows, map[string]any{"id": "/subscriptions/" + s.id, "type": "microsoft.resources/subscriptions", "subscriptionId": s.id, "tags": s.tags})
			for n, t := range s.groups {
				rows = append(rows, map[string]any{"id": "/subscriptions/" + s.id + "/resourceGroups/" + n, "type": "microsoft.resources/subscriptions/resourcegroups", "subscriptionId": s.id, "tags": t})
			}
		case "graph:subscriptions":
			rows = append(rows, map[string]any{"id": "/subscriptions/" + s.id, "subscriptionId": s.id, "tags": s.tags})
		}
	}
	f.mu.Unlock()
	from := min(skip, len(rows))
	to := min(from+size, len(rows))
	body := map[string]any{"totalRecords": len(rows), "count": to - from, "data": nonNilSlice(rows[from:to]), "facets": []any{}, "resultTruncated": "false"}
	if to < len(rows) {
		body["$skipToken"] = strconv.Itoa(to)
	}
	writeJSON(w, body)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(v)
}

func armError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("x-ms-error-code", code)
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

// --- the world, from testdata/azure ---

const (
	// subExample is the subscription of ListAssessments_example.json.
	subExample = "20ff7fc3-e762-44dd-bd96-b71116dcdc23"
	// subRecs is the subscription of ListAssessmentsMetadata_subscription_example.json,
	// which here holds one assessment per recommendation of the Defender
	// compute recommendation list.
	subRecs = "0980887d-03d6-408c-9566-532f3456804e"
)

func readExample(t testing.TB, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "azure", name))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return m
}

func exampleBody(t testing.TB, name string) map[string]any {
	ex := readExample(t, name)
	return ex["responses"].(map[string]any)["200"].(map[string]any)["body"].(map[string]any)
}

func exampleValues(t testing.TB, name string) []map[string]any {
	var out []map[string]any
	for _, v := range exampleBody(t, name)["value"].([]any) {
		out = append(out, v.(map[string]any))
	}
	return out
}

type recommendation struct {
	Cloud         string  `json:"cloud"`
	Category      string  `json:"category"`
	Name          string  `json:"name"`
	AssessmentKey *string `json:"assessmentKey"`
	Severity      string  `json:"severity"`
	Description   string  `json:"description"`
}

func readRecommendations(t testing.TB) []recommendation {
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "testdata", "azure", "defender_for_cloud_compute_recommendations.json"))
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Recommendations []recommendation `json:"recommendations"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var out []recommendation
	for _, r := range doc.Recommendations {
		if r.AssessmentKey != nil {
			out = append(out, r)
		}
	}
	return out
}

// recStatus is the status the world gives the i-th recommendation.
func recStatus(i int) string { return []string{"Unhealthy", "Healthy", "NotApplicable"}[i%3] }

// recResource is the resource the world assesses the i-th recommendation on:
// a VM for Azure rows; for AWS and GCP rows an entity of the security
// connectors of GetSecurityConnectorsSubscription_example.json, moved into
// subRecs, with resourceDetails in the shape Resource Graph gives
// connector resources (Source Aws/Gcp, ResourceName, ResourceType, Region).
func recResource(i int, r recommendation) (id string, details map[string]any) {
	switch r.Cloud {
	case "AWS":
		id = fmt.Sprintf("/subscriptions/%s/resourceGroups/exampleResourceGroup1/providers/Microsoft.Security/securityConnectors/exampleSecurityConnectorAws/securityentitydata/aws-ec2-instance-i-%04d", subRecs, i)
		return id, map[string]any{"source": "Aws", "id": id, "ResourceName": fmt.Sprintf("i-%04d", i), "ResourceType": "ec2.instance", "Region": "eu-west-1", "NativeResourceId": fmt.Sprintf("arn:aws:ec2:eu-west-1:123456789012:instance/i-%04d", i)}
	case "GCP":
		id = fmt.Sprintf("/subscriptions/%s/resourceGroups/exampleResourceGroup3/providers/Microsoft.Security/securityConnectors/exampleSecurityConnectorGcp/securityentitydata/gcp-compute-instance-vm-%04d", subRecs, i)
		return id, map[string]any{"source": "Gcp", "id": id, "ResourceName": fmt.Sprintf("vm-%04d", i), "ResourceType": "compute.instance", "Region": "europe-west1"}
	}
	id = fmt.Sprintf("/subscriptions/%s/resourceGroups/rg-compute/providers/Microsoft.Compute/virtualMachines/vm-%04d", subRecs, i)
	return id, map[string]any{"source": "Azure", "id": id}
}

// loadWorld fills f with the two subscriptions of the examples.
func loadWorld(t testing.TB, f *fakeARM) {
	a := f.sub(subExample)
	a.assessment = exampleValues(t, "ListAssessments_example.json")
	a.metadata = exampleValues(t, "ListAssessmentsMetadata_subscription_example.json")
	a.tags = map[string]string{"owner": "platform@contoso.com"}
	a.groups["myRg"] = map[string]string{"owner": "rg-owner@contoso.com", "costcenter": "42"}
	vmss1 := "/subscriptions/20ff7fc3-e762-44dd-bd96-b71116dcdc23/resourceGroups/myRg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss1"
	a.resourceTags[strings.ToLower(vmss1)] = map[string]string{"owner": "alice@contoso.com", "env": "prod"}
	a.resourceLocation[strings.ToLower(vmss1)] = "westeurope"

	b := f.sub(subRecs)
	b.tags = map[string]string{"owner": "compute@contoso.com"}
	b.groups["rg-compute"] = map[string]string{}
	for i, r := range readRecommendations(t) {
		id, details := recResource(i, r)
		b.assessment = append(b.assessment, map[string]any{
			"id":   id + "/providers/Microsoft.Security/assessments/" + *r.AssessmentKey,
			"name": *r.AssessmentKey, "type": "Microsoft.Security/assessments",
			"properties": map[string]any{"resourceDetails": details, "displayName": r.Name, "status": map[string]any{"code": recStatus(i)}},
		})
		b.metadata = append(b.metadata, map[string]any{
			"name": *r.AssessmentKey, "type": "Microsoft.Security/assessmentMetadata",
			"id": "/providers/Microsoft.Security/assessmentMetadata/" + *r.AssessmentKey,
			"properties": map[string]any{"displayName": r.Name, "severity": r.Severity, "description": r.Description,
				"categories": []any{r.Category}, "assessmentType": "BuiltIn"},
		})
		if r.Cloud == "Azure" {
			b.resourceTags[strings.ToLower(id)] = map[string]string{"owner": fmt.Sprintf("owner%d@contoso.com", i%5)}
		}
	}
}

func startARM(t testing.TB, f *fakeARM) *httptest.Server {
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return srv
}
