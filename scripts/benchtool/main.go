// Command benchtool supports scripts/bench-import.sh and bench-ui.sh: it generates a large
// Steward JSON Lines findings file and measures API read latency. It is a
// development tool, not part of Steward.
//
//	go run ./scripts/benchtool gen -n 1000000 -recs 100 > findings.jsonl
//	go run ./scripts/benchtool get -url http://127.0.0.1:8080/api/v1/recommendations?limit=100 -n 1000
//	go run ./scripts/benchtool get -url http://127.0.0.1:8080/recommendations -cookie steward_session=... -n 1000
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"time"

	"github.com/stewardhq/steward/internal/bench"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtool gen|get [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "gen":
		err = gen(os.Args[2:])
	case "get":
		err = get(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

// gen writes n assessments: recs recommendations × n/recs resources, a
// realistic mix of severities and statuses, one JSON object per line.
func gen(args []string) error {
	fs := flag.NewFlagSet("gen", flag.ExitOnError)
	n := fs.Int("n", 1_000_000, "assessments")
	recs := fs.Int("recs", 100, "recommendations")
	_ = fs.Parse(args)
	// The same estate steward bench imports, over 20 subscriptions (the
	// figures in docs/benchmarks.md for bench-import.sh and bench-ui.sh).
	return bench.Estate{N: *n, Recs: *recs, Subscriptions: 20}.Write(os.Stdout)
}

// get sends n GETs one after another and prints the latency percentiles.
func get(args []string) error {
	fs := flag.NewFlagSet("get", flag.ExitOnError)
	url := fs.String("url", "", "URL to GET")
	n := fs.Int("n", 1000, "requests")
	token := fs.String("token", os.Getenv("STEWARD_TOKEN"), "API token (default $STEWARD_TOKEN)")
	cookie := fs.String("cookie", "", "a web UI session cookie (name=value) to send instead of the token; the request asks for HTML")
	_ = fs.Parse(args)
	client := &http.Client{Timeout: 30 * time.Second}
	var d []time.Duration
	for range *n {
		req, err := http.NewRequest(http.MethodGet, *url, nil)
		if err != nil {
			return err
		}
		switch {
		case *cookie != "":
			req.Header.Set("Cookie", *cookie)
			req.Header.Set("Accept", "text/html")
		case *token != "":
			req.Header.Set("Authorization", "Bearer "+*token)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("GET %s: %s", *url, resp.Status)
		}
		d = append(d, time.Since(start))
	}
	slices.Sort(d)
	pct := func(p float64) time.Duration { return d[int(p*float64(len(d)-1))] }
	fmt.Printf("requests=%d p50=%s p90=%s p99=%s max=%s\n", len(d), pct(0.5), pct(0.9), pct(0.99), d[len(d)-1])
	return nil
}
