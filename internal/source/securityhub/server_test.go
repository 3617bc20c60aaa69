package securityhub

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fakeHub is a local Security Hub that speaks the service's REST-JSON
// protocol for GetFindings (POST /findings, NextToken paging, errors as
// X-Amzn-ErrorType plus a JSON message) and STS's query protocol for
// AssumeRole. It serves raw ASFF findings, so the SDK deserializes the real
// samples' wire form. It does not verify SigV4 signatures; it reads the
// access key and region from the Authorization header's credential scope.
type fakeHub struct {
	srv *httptest.Server

	mu       sync.Mutex
	findings map[string][]json.RawMessage // by region
	// generated, when set for a region, serves n findings made by gen
	// instead (benchmarks: no filters).
	generated map[string]generated
	pageSize  int
	// fail answers a request with a status and error code: by
	// "<region>/<page>" (page 1-based) or "*" for every request.
	fail map[string]hubError
	// throttle answers the first throttle requests with 429.
	throttle int
	// broken answers pages of its region with this body (status 200).
	broken     map[string]string
	retryAfter string
	requests   []hubRequest
	// stsCreds are what AssumeRole hands out; assumed counts calls.
	stsKey  string
	assumed int
	// serverNanos is the time the handler spent answering (benchmarks).
	serverNanos atomic.Int64
}

type generated struct {
	n   int
	gen func(i int) json.RawMessage
	// pages caches each encoded page by its NextToken offset, so a
	// benchmark's timed pulls measure the client, not the page building
	// (warm it with one untimed pull).
	pages map[int][]byte
}

type hubError struct {
	status  int
	code    string
	message string
}

type hubRequest struct {
	at        time.Time
	region    string
	accessKey string
	signed    bool
	token     string
	filters   map[string][]struct{ Value, Comparison string }
	maxResult int
	nextToken string
	// attempt is the SDK's own count (amz-sdk-request: attempt=N): above 1
	// the SDK is retrying a request, for example after a dropped connection.
	attempt int
}

var credentialRE = regexp.MustCompile(`Credential=([^/]+)/[0-9]{8}/([^/]+)/([^/]+)/aws4_request`)

func newFakeHub(t *testing.T) *fakeHub {
	h := &fakeHub{findings: map[string][]json.RawMessage{}, pageSize: 10, fail: map[string]hubError{}}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *fakeHub) URL() string { return h.srv.URL }

func (h *fakeHub) serve(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { h.serverNanos.Add(int64(time.Since(start))) }()
	body, _ := io.ReadAll(r.Body)
	m := credentialRE.FindStringSubmatch(r.Header.Get("Authorization"))
	if m == nil {
		writeError(w, hubError{403, "MissingAuthenticationTokenException", "Missing Authentication Token"})
		return
	}
	key, region, service := m[1], m[2], m[3]
	if r.Method == http.MethodPost && r.URL.Path == "/" && service == "sts" {
		h.assumeRole(w, body)
		return
	}
	if r.Method != http.MethodPost || r.URL.Path != "/findings" || service != "securityhub" {
		writeError(w, hubError{404, "ResourceNotFoundException", "no such operation " + r.Method + " " + r.URL.Path})
		return
	}
	var in struct {
		Filters    map[string][]struct{ Value, Comparison string }
		MaxResults int
		NextToken  string
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeError(w, hubError{400, "InvalidInputException", err.Error()})
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.generated == nil {
		h.requests = append(h.requests, hubRequest{at: time.Now(), region: region, accessKey: key, signed: r.Header.Get("X-Amz-Date") != "",
			token: r.Header.Get("X-Amz-Security-Token"), filters: in.Filters, maxResult: in.MaxResults,
			nextToken: in.NextToken, attempt: sdkAttempt(r.Header.Get("Amz-Sdk-Request"))})
	}
	if h.throttle > 0 {
		h.throttle--
		if h.retryAfter != "" {
			w.Header().Set("Retry-After", h.retryAfter)
		}
		writeError(w, hubError{429, "ThrottlingException", "Rate exceeded"})
		return
	}
	offset := 0
	if in.NextToken != "" {
		var err error
		if offset, err = strconv.Atoi(in.NextToken); err != nil {
			writeError(w, hubError{400, "InvalidInputException", "bad NextToken"})
			return
		}
	}
	size := h.pageSize
	if in.MaxResults > 0 && in.MaxResults < size {
		size = in.MaxResults
	}
	page := offset/size + 1
	for _, k := range []string{region + "/" + strconv.Itoa(page), "*"} {
		if e, ok := h.fail[k]; ok {
			writeError(w, e)
			return
		}
	}
	if b, ok := h.broken[region+"/"+strconv.Itoa(page)]; ok {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, b)
		return
	}
	out := struct {
		Findings  []json.RawMessage
		NextToken string `json:",omitempty"`
	}{}
	total := 0
	if g, ok := h.generated[region]; ok {
		if page, ok := g.pages[offset]; ok {
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write(page)
			return
		}
		total = g.n
		for i := offset; i < min(offset+size, total); i++ {
			out.Findings = append(out.Findings, g.gen(i))
		}
		defer func() {
			if end := min(offset+size, total); end < total {
				out.NextToken = strconv.Itoa(end)
			}
			page, _ := json.Marshal(out)
			if g.pages == nil {
				g.pages = map[int][]byte{}
				h.generated[region] = g
			}
			g.pages[offset] = page
		}()
	} else {
		all := filter(h.findings[region], in.Filters)
		total = len(all)
		out.Findings = all[min(offset, total):min(offset+size, total)]
	}
	end := min(offset+size, total)
	if end < total {
		out.NextToken = strconv.Itoa(end)
	}
	if out.Findings == nil {
		out.Findings = []json.RawMessage{}
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-RequestId", "req-"+strconv.Itoa(len(h.requests)))
	_ = json.NewEncoder(w).Encode(out)
}

// filter applies GetFindings' EQUALS string filters that the puller uses.
func filter(in []json.RawMessage, filters map[string][]struct{ Value, Comparison string }) []json.RawMessage {
	var out []json.RawMessage
	for _, raw := range in {
		var f struct {
			AwsAccountId, RecordState, ProductName string
			Severity                               struct{ Label string }
			Workflow                               struct{ Status string }
		}
		_ = json.Unmarshal(raw, &f)
		if f.RecordState == "" {
			f.RecordState = "ACTIVE"
		}
		values := map[string]string{"AwsAccountId": f.AwsAccountId, "RecordState": f.RecordState, "ProductName": f.ProductName,
			"SeverityLabel": f.Severity.Label, "WorkflowStatus": f.Workflow.Status}
		ok := true
		for name, conds := range filters {
			if len(conds) == 0 {
				continue
			}
			ok = ok && slices.ContainsFunc(conds, func(c struct{ Value, Comparison string }) bool {
				return c.Comparison == "EQUALS" && c.Value == values[name]
			})
		}
		if ok {
			out = append(out, raw)
		}
	}
	return out
}

func writeError(w http.ResponseWriter, e hubError) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-ErrorType", e.code)
	w.WriteHeader(e.status)
	_, _ = fmt.Fprintf(w, `{"message": %q}`, e.message)
}

func (h *fakeHub) assumeRole(w http.ResponseWriter, body []byte) {
	form, _ := url.ParseQuery(string(body))
	if form.Get("Action") != "AssumeRole" || form.Get("RoleArn") == "" {
		w.WriteHeader(400)
		return
	}
	h.mu.Lock()
	h.assumed++
	h.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	_, _ = fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <Credentials>
      <AccessKeyId>%s</AccessKeyId>
      <SecretAccessKey>assumed-secret</SecretAccessKey>
      <SessionToken>assumed-token</SessionToken>
      <Expiration>%s</Expiration>
    </Credentials>
    <AssumedRoleUser><Arn>%s</Arn><AssumedRoleId>AROAEXAMPLE:steward-securityhub</AssumedRoleId></AssumedRoleUser>
  </AssumeRoleResult>
  <ResponseMetadata><RequestId>sts-1</RequestId></ResponseMetadata>
</AssumeRoleResponse>`, h.stsKey, time.Now().Add(time.Hour).UTC().Format(time.RFC3339), form.Get("RoleArn"))
}

func (h *fakeHub) set(region string, findings []json.RawMessage) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.findings[region] = findings
}

// sdkAttempt reads the attempt number from the SDK's amz-sdk-request
// header ("attempt=2; max=5"); 1 when absent.
func sdkAttempt(header string) int {
	for part := range strings.SplitSeq(header, ";") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(part), "attempt="); ok {
			if n, err := strconv.Atoi(v); err == nil {
				return n
			}
		}
	}
	return 1
}

func (h *fakeHub) log() []hubRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.requests)
}

// sample reads the findings of a testdata/asff file, either form.
func sample(t *testing.T, name string) []json.RawMessage {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../../../testdata/asff", name))
	require.NoError(t, err)
	var doc struct{ Findings []json.RawMessage }
	if json.Unmarshal(b, &doc) == nil && doc.Findings != nil {
		return doc.Findings
	}
	var out []json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(b))
	for dec.More() {
		var raw json.RawMessage
		require.NoError(t, dec.Decode(&raw))
		out = append(out, raw)
	}
	return out
}
