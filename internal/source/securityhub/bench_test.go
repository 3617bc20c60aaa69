package securityhub

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/secret"
	"github.com/stewardhq/steward/internal/source/pull"
)

// countSink counts what a pull reads without keeping it.
type countSink struct{ observed, done, failed int }

func (s *countSink) Observe(context.Context, pull.Unit, steward.Observation) error {
	s.observed++
	return nil
}
func (s *countSink) ScopeTags(context.Context, steward.Scope, map[string]string) error { return nil }
func (s *countSink) Done(context.Context, pull.Unit) error                             { s.done++; return nil }
func (s *countSink) Failed(context.Context, pull.Unit, error)                          { s.failed++ }

// BenchmarkPull200k pulls 200,000 findings (the real Security Hub sample's
// S3.2 finding, one bucket per finding, over 20 accounts) in pages of 100
// from the local test server, through the SDK (signing, JSON decoding,
// retries) and the mapping. Run:
//
//	go test ./internal/source/securityhub -run XXX -bench Pull200k -benchtime 1x
func BenchmarkPull200k(b *testing.B) {
	n := benchN
	h := newFakeHub(&testing.T{})
	defer h.srv.Close()
	raw := sample(&testing.T{}, "asff_sample.json")[17]
	tpl := strings.ReplaceAll(string(raw), "example-bucket-123456789123-us-east-1", "bucket-%ID%")
	tpl = strings.ReplaceAll(tpl, "5fd36ec6-3f98-4d5b-a9cb-5f82e389a8e9", "%ID%")
	h.pageSize = 100
	h.generated = map[string]generated{"us-east-1": {n: n, gen: func(i int) json.RawMessage {
		id := strconv.Itoa(i)
		s := strings.ReplaceAll(tpl, "%ID%", id)
		s = strings.ReplaceAll(s, "123456789123", strconv.Itoa(100000000000+i%20))
		return json.RawMessage(s)
	}}}
	s := Settings{Regions: []string{"us-east-1"}, Endpoint: h.URL(), Local: true}
	sec := Secrets{AccessKeyID: secret.New(testKeyID), SecretAccessKey: secret.New(testSecret)}
	p, err := newPuller(s, sec, pull.Env{HTTPClient: &http.Client{Timeout: time.Minute}})
	if err != nil {
		b.Fatal(err)
	}
	// One untimed pull builds and caches the server's pages; the timed
	// pulls then measure the client and the server's own time is reported
	// apart (server-ns/op).
	if err := p.Pull(context.Background(), &countSink{}); err != nil {
		b.Fatal(err)
	}
	h.serverNanos.Store(0)
	b.ResetTimer()
	for range b.N {
		sink := &countSink{}
		if err := p.Pull(context.Background(), sink); err != nil {
			b.Fatal(err)
		}
		if sink.observed != n || sink.done != min(n, 20) || sink.failed != 0 {
			b.Fatalf("observed %d, done %d, failed %d", sink.observed, sink.done, sink.failed)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "findings/s")
	b.ReportMetric(float64(h.serverNanos.Load())/float64(b.N), "server-ns/op")
}

// benchN is how many findings BenchmarkPull200k serves.
var benchN = 200_000
