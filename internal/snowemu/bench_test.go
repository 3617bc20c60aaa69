package snowemu_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stewardhq/steward/internal/snowemu"
)

// benchRecords is the store size the performance target is stated for.
const benchRecords = 100_000

type benchFixture struct {
	emu    *snowemu.Emulator
	srv    *httptest.Server
	client *http.Client
	ids    []string
}

// newBenchFixture seeds benchRecords incidents through the Go API (fast) and
// serves the emulator on real loopback HTTP.
func newBenchFixture(b *testing.B) *benchFixture {
	b.Helper()
	emu := snowemu.New(snowemu.Options{}, nil)
	ids := make([]string, 0, benchRecords)
	for i := range benchRecords {
		rec, err := emu.Create("incident", snowemu.Record{
			"short_description": fmt.Sprintf("Finding %d", i),
			"correlation_id":    fmt.Sprintf("bench-%d", i),
			"impact":            "2", "urgency": "2",
		}, "")
		if err != nil {
			b.Fatalf("seed: %v", err)
		}
		ids = append(ids, rec["sys_id"])
	}
	srv := httptest.NewServer(emu)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 256
	// No cleanup: the fixture is shared by every run of a benchmark (b.N
	// grows) and lives until the test binary exits.
	return &benchFixture{emu: emu, srv: srv, client: &http.Client{Transport: tr}, ids: ids}
}

func (f *benchFixture) do(b *testing.B, method, path, body string, want int) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, f.srv.URL+path, rd)
	if err != nil {
		b.Error(err)
		return
	}
	req.SetBasicAuth("admin", "admin")
	req.Header.Set("Accept", "application/json")
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := f.client.Do(req)
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != want {
		b.Errorf("%s %s: status %d, want %d", method, path, resp.StatusCode, want)
	}
}

var (
	getFixtureOnce sync.Once
	getFixture     *benchFixture
)

// BenchmarkGetBySysID: single-record GETs, full record, with 100,000
// incidents stored. Target ≥ 5,000 req/s on 2 cores.
func BenchmarkGetBySysID(b *testing.B) {
	getFixtureOnce.Do(func() { getFixture = newBenchFixture(b) })
	f := getFixture
	var n atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			f.do(b, http.MethodGet, "/api/now/table/incident/"+f.ids[int(i)%len(f.ids)], "", http.StatusOK)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

var (
	createFixtureOnce sync.Once
	createFixture     *benchFixture
)

// BenchmarkCreate: POST of a new incident (with correlation_id and a work
// note, so journal rows are written too) with ≥ 100,000 incidents stored.
// Target ≥ 2,000 req/s on 2 cores.
func BenchmarkCreate(b *testing.B) {
	createFixtureOnce.Do(func() { createFixture = newBenchFixture(b) })
	f := createFixture
	var n atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			body := fmt.Sprintf(`{"short_description":"Bench finding %d","correlation_id":"new-%d","impact":"2","urgency":"1","work_notes":"created by benchmark"}`, i, i)
			f.do(b, http.MethodPost, "/api/now/table/incident?sysparm_exclude_reference_link=true&sysparm_fields=sys_id,number", body, http.StatusCreated)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

var (
	lookupFixtureOnce sync.Once
	lookupFixture     *benchFixture
)

// BenchmarkLookupByCorrelationID: the idempotency lookup a client does
// before each create (§2.6), with 100,000 incidents stored.
func BenchmarkLookupByCorrelationID(b *testing.B) {
	lookupFixtureOnce.Do(func() { lookupFixture = newBenchFixture(b) })
	f := lookupFixture
	var n atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1) % benchRecords
			f.do(b, http.MethodGet, fmt.Sprintf("/api/now/table/incident?sysparm_query=correlation_id%%3Dbench-%d&sysparm_fields=sys_id,number,state&sysparm_limit=1", i), "", http.StatusOK)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}

var (
	inFixtureOnce sync.Once
	inFixture     *benchFixture
)

// BenchmarkListSysIDIn100: the batched read of a reconcile, one list GET
// of sysparm_query=sys_idIN<100 sys_ids>^ORDERBYsys_id, with 100,000
// incidents stored, over real loopback HTTP.
func BenchmarkListSysIDIn100(b *testing.B) {
	inFixtureOnce.Do(func() { inFixture = newBenchFixture(b) })
	f := inFixture
	const batch = 100
	paths := make([]string, 0, len(f.ids)/batch)
	for i := 0; i+batch <= len(f.ids); i += batch {
		// Spread each batch over the table, as linked tickets sorted by
		// sys_id are.
		ids := make([]string, batch)
		for j := range ids {
			ids[j] = f.ids[(i/batch+j*(len(f.ids)/batch))%len(f.ids)]
		}
		paths = append(paths, "/api/now/table/incident?sysparm_limit=100&sysparm_query=sys_idIN"+strings.Join(ids, ",")+"%5EORDERBYsys_id")
	}
	var n atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			f.do(b, http.MethodGet, paths[int(i)%len(paths)], "", http.StatusOK)
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
