package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"

	"github.com/stewardhq/steward"
)

// Uploads may take far longer than the server's read timeout (a 4 GiB file
// on a slow link), so instead of a fixed bound they must keep a minimum
// average data rate. A client that trickles a body is cut off within about
// one window, and it can hold the connection no longer than that.
const (
	defaultUploadMinRate = 1 << 10 // bytes per second
	defaultUploadWindow  = 10 * time.Second
)

// uploadRate is the minimum data rate of an upload body: at least minRate
// bytes per second, averaged over each window.
type uploadRate struct {
	minRate int64
	window  time.Duration
}

// minRateReader reads an upload body and fails when its average rate over a
// window falls below the minimum. It keeps the connection's read deadline
// one window ahead, so a client that stops sending altogether is cut off by
// the deadline rather than holding a goroutine forever.
type minRateReader struct {
	r    io.ReadCloser
	rc   *http.ResponseController
	rate uploadRate

	start    time.Time // start of the current window
	n        int64     // bytes read in the current window
	deadline time.Time // the read deadline last set
	err      error     // sticky: the rate failure, once seen
}

// newMinRateReader lifts the server's fixed read timeout from the request
// and replaces it with a rolling deadline. It fails when the connection
// cannot take deadlines, rather than leave an upload unbounded.
func newMinRateReader(w http.ResponseWriter, body io.ReadCloser, rate uploadRate) (*minRateReader, error) {
	m := &minRateReader{r: body, rc: http.NewResponseController(w), rate: rate, start: time.Now()}
	if err := m.extend(m.start); err != nil {
		return nil, fmt.Errorf("set upload read deadline: %w", err)
	}
	return m, nil
}

// extend moves the read deadline one window past now. Setting a deadline
// costs a timer update, so it is moved only once a quarter of the window
// has gone by.
func (m *minRateReader) extend(now time.Time) error {
	if !m.deadline.IsZero() && m.deadline.Sub(now) > m.rate.window*3/4 {
		return nil
	}
	m.deadline = now.Add(m.rate.window)
	return m.rc.SetReadDeadline(m.deadline)
}

func (m *minRateReader) Read(p []byte) (int, error) {
	if m.err != nil {
		return 0, m.err
	}
	if err := m.extend(time.Now()); err != nil {
		return 0, fmt.Errorf("set upload read deadline: %w", err)
	}
	n, err := m.r.Read(p)
	m.n += int64(n)
	now := time.Now()
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// A whole window without a byte: the rate over it was zero.
		return n, m.fail()
	}
	if elapsed := now.Sub(m.start); elapsed >= m.rate.window {
		if float64(m.n) < float64(m.rate.minRate)*elapsed.Seconds() {
			return n, m.fail()
		}
		m.start, m.n = now, 0
	}
	return n, err
}

// Close closes the body.
func (m *minRateReader) Close() error { return m.r.Close() }

// fail records the rate failure and ends reading from the connection at
// once: after the handler answers, net/http would otherwise try to drain
// the rest of the body at the client's pace before closing.
func (m *minRateReader) fail() error {
	m.err = steward.Errorf(steward.CodeTimeout,
		"upload too slow: it fell below %d bytes/s over %s and was cancelled; nothing was imported",
		m.rate.minRate, m.rate.window)
	_ = m.rc.SetReadDeadline(time.Now())
	return m.err
}

// uploadRate is the minimum data rate uploads must keep.
//
// TODO: take it from Config (UploadMinRate, UploadRateWindow) so tests can
// scale the window down; Config lives in api.go, which is being reworked.
func (c *Config) uploadRate() uploadRate {
	r := uploadRate{minRate: defaultUploadMinRate, window: defaultUploadWindow}
	if c.UploadMinRate > 0 {
		r.minRate = c.UploadMinRate
	}
	if c.UploadRateWindow > 0 {
		r.window = c.UploadRateWindow
	}
	return r
}

// importContentTypes are the body types POST /api/v1/imports accepts: the
// file as bytes, or labelled as the JSON or JSON Lines it holds. The format
// itself is detected from the content (or given as ?format=), not from the
// type.
var importContentTypes = []string{"application/octet-stream", "application/json", "application/x-ndjson"}
