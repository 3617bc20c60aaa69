package snowemu_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/snowemu"
)

// The steward scheme adds X-Steward-Timestamp (the emulator's clock, Unix
// seconds) and signs "<timestamp>.<body>"; the default scheme is untouched.
func TestWebhookStewardScheme(t *testing.T) {
	t.Parallel()
	type hit struct {
		path   string
		body   []byte
		header http.Header
	}
	var mu sync.Mutex
	var hits []hit
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		hits = append(hits, hit{path: r.URL.Path, body: body, header: r.Header.Clone()})
		mu.Unlock()
	}))
	t.Cleanup(recv.Close)
	b := setup(t, snowemu.Options{})
	require.NoError(t, b.emu.AddWebhook(snowemu.Webhook{URL: recv.URL + "/steward", Secret: "s3cr3t", Scheme: snowemu.SchemeSteward}))
	// The admin API takes the scheme too.
	r := b.do(t, http.MethodPost, "/emulator/admin/webhooks", `{"url":"`+recv.URL+`/body","secret":"s3cr3t","scheme":"body"}`)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	r = b.do(t, http.MethodPost, "/emulator/admin/webhooks", `{"url":"`+recv.URL+`/x","secret":"s","scheme":"hmac-md5"}`)
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Contains(t, string(r.body), "hmac-md5")

	b.create(t, "incident", `{"short_description":"x"}`)
	b.emu.WaitWebhooks()
	mu.Lock()
	defer mu.Unlock()
	require.Len(t, hits, 2)
	for _, h := range hits {
		mac := hmac.New(sha256.New, []byte("s3cr3t"))
		switch h.path {
		case "/steward":
			ts := h.header.Get("X-Steward-Timestamp")
			require.Equal(t, strconv.FormatInt(b.clock.Now().Unix(), 10), ts)
			mac.Write([]byte(ts + "."))
		case "/body":
			require.Empty(t, h.header.Get("X-Steward-Timestamp"))
		default:
			t.Fatalf("unexpected delivery to %s", h.path)
		}
		mac.Write(h.body)
		require.Equal(t, base64.StdEncoding.EncodeToString(mac.Sum(nil)), h.header.Get("X-Signature-SHA256"), h.path)
	}
}
