package bench

import (
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"time"
)

// timingProxy sits between the emulator's webhook and Steward on
// loopback and records how long Steward took to answer each delivery
// (from sending the request to its answer's headers).
type timingProxy struct {
	hs  *http.Server
	url string

	mu      sync.Mutex
	answers []time.Duration
	status  map[int]int
}

type timedTransport struct {
	rt http.RoundTripper
	p  *timingProxy
}

func (t timedTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	start := time.Now()
	resp, err := t.rt.RoundTrip(r)
	d := time.Since(start)
	t.p.mu.Lock()
	t.p.answers = append(t.p.answers, d)
	if err == nil {
		t.p.status[resp.StatusCode]++
	} else {
		t.p.status[0]++
	}
	t.p.mu.Unlock()
	return resp, err
}

func startProxy(target string) (*timingProxy, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &timingProxy{url: "http://" + ln.Addr().String(), status: map[int]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = timedTransport{rt: &http.Transport{MaxIdleConnsPerHost: 256}, p: p}
	rp.ErrorLog = nil
	p.hs = &http.Server{Handler: rp, ReadHeaderTimeout: 10 * time.Second, ErrorLog: nil}
	go func() { _ = p.hs.Serve(ln) }()
	return p, nil
}

// take returns the answers recorded since the last take, and the statuses.
func (p *timingProxy) take() ([]time.Duration, map[int]int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	a, s := p.answers, p.status
	p.answers, p.status = nil, map[int]int{}
	return a, s
}

func (p *timingProxy) close() { _ = p.hs.Close() }

func drain(resp *http.Response) (int64, error) {
	n, err := io.Copy(io.Discard, resp.Body)
	if cerr := resp.Body.Close(); err == nil {
		err = cerr
	}
	return n, err
}
