package defender

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/pull"
)

// countSink counts what a pull hands it.
type countSink struct{ obs, tags, done, failed int }

func (s *countSink) Observe(context.Context, pull.Unit, steward.Observation) error {
	s.obs++
	return nil
}
func (s *countSink) ScopeTags(context.Context, steward.Scope, map[string]string) error {
	s.tags++
	return nil
}
func (s *countSink) Done(context.Context, pull.Unit) error    { s.done++; return nil }
func (s *countSink) Failed(context.Context, pull.Unit, error) { s.failed++ }

// BenchmarkPull200k pulls 200,000 findings (10 subscriptions, one Resource
// Graph query, pages of 1,000) from a local server whose pages are encoded
// before the timer starts; server-ns/op is the time its handler spent
// answering (reading the request, writing a prepared page).
func BenchmarkPull200k(b *testing.B) {
	const total, page, nsubs = 200_000, 1000, 10
	recs := readRecommendations(b)
	subs := make([]string, nsubs)
	for i := range subs {
		subs[i] = fmt.Sprintf("%08d-0000-4000-8000-000000000000", i)
	}
	var pages [][]byte
	for from := 0; from < total; from += page {
		rows := make([]any, 0, page)
		for i := from; i < from+page; i++ {
			r := recs[i%len(recs)]
			sub := subs[i%nsubs]
			rid := fmt.Sprintf("/subscriptions/%s/resourceGroups/rg-%d/providers/Microsoft.Compute/virtualMachines/vm-%06d", sub, i%50, i/len(recs))
			rows = append(rows, map[string]any{
				"id": rid + "/providers/Microsoft.Security/assessments/" + *r.AssessmentKey, "subscriptionId": sub,
				"key": *r.AssessmentKey, "resourceId": rid, "source": "Azure", "resourceName": "", "resourceType": "", "nativeRegion": "",
				"status": recStatus(i), "cause": "", "statusDescription": "", "displayName": r.Name, "severity": r.Severity,
				"description": r.Description, "remediation": "Follow the steps in the recommendation's remediation section.",
				"categories": []any{"Compute"}, "timeGenerated": "2026-11-28T10:00:00Z",
				"resourceTags": map[string]any{"owner": fmt.Sprintf("team%d@contoso.com", i%20), "env": "prod"}, "resourceLocation": "westeurope",
			})
		}
		body := map[string]any{"totalRecords": total, "count": page, "data": rows, "facets": []any{}, "resultTruncated": "false"}
		if from+page < total {
			body["$skipToken"] = strconv.Itoa(from + page)
		}
		bs, err := json.Marshal(body)
		if err != nil {
			b.Fatal(err)
		}
		pages = append(pages, bs)
	}
	var subRows []any
	for _, id := range subs {
		subRows = append(subRows, map[string]any{"id": "/subscriptions/" + id, "type": "microsoft.resources/subscriptions", "subscriptionId": id, "tags": map[string]any{"owner": "platform@contoso.com"}})
	}
	containers, _ := json.Marshal(map[string]any{"totalRecords": nsubs, "count": nsubs, "data": subRows, "resultTruncated": "false"})
	var serverNs atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		defer func() { serverNs.Add(int64(time.Since(start))) }()
		var req graphRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		if !strings.HasPrefix(req.Query, "securityresources") {
			_, _ = w.Write(containers)
			return
		}
		skip, _ := strconv.Atoi(req.Options.SkipToken)
		_, _ = w.Write(pages[skip/page])
	}))
	defer srv.Close()
	p := testPuller(b, srv.URL, func(s *Settings) { s.Subscriptions = subs })
	b.ResetTimer()
	serverNs.Store(0)
	for b.Loop() {
		sink := &countSink{}
		if err := p.Pull(context.Background(), sink); err != nil {
			b.Fatal(err)
		}
		if sink.obs != total || sink.done != nsubs || sink.failed != 0 {
			b.Fatalf("observed %d, done %d, failed %d", sink.obs, sink.done, sink.failed)
		}
	}
	b.ReportMetric(float64(serverNs.Load())/float64(b.N), "server-ns/op")
	b.ReportMetric(float64(total), "findings/op")
}
