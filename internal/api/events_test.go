package api

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
)

// The delivery shown in docs/servicenow-setup.md §3.2 is one Steward
// accepts: what the docs promise is what the code checks.
func TestDocumentedDeliveryVerifies(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/servicenow-setup.md")
	require.NoError(t, err)
	m := regexp.MustCompile("(?s)```http\n(.*?)\n```").FindSubmatch(doc)
	require.NotNil(t, m, "the doc shows a delivery")
	head, body, ok := strings.Cut(string(m[1]), "\n\n")
	require.True(t, ok)
	headers := map[string]string{}
	for _, line := range strings.Split(head, "\n")[1:] {
		k, v, _ := strings.Cut(line, ": ")
		headers[k] = v
	}
	ts, sig := headers[headerTimestamp], headers[headerSignature]
	require.NotEmpty(t, ts)
	require.True(t, validSignature([]byte("s3cret"), ts, []byte(body), sig))
	require.False(t, validSignature([]byte("s3cret "), ts, []byte(body), sig))
	_, err = parseWebhookEvent([]byte(body))
	require.NoError(t, err)
	require.Contains(t, string(doc), "generateMac(gs.base64Encode(secret), 'HmacSHA256', ts + '.' + body)")
}

func TestWebhookTimestampWindow(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 25, 22, 0, 0, 0, time.UTC)
	a := &API{now: func() time.Time { return now }}
	unix := func(d time.Duration) string { return itoa(now.Add(d).Unix()) }
	tests := []struct {
		name, ts, want string // want is in the message; "" accepts
	}{
		{"Now", unix(0), ""},
		{"FiveMinutesOld", unix(-5 * time.Minute), ""},
		{"FiveMinutesAhead", unix(5 * time.Minute), ""},
		{"TooOld", unix(-5*time.Minute - time.Second), "5m1s old"},
		{"TooFarAhead", unix(5*time.Minute + time.Second), "5m1s in the future"},
		{"Milliseconds", itoa(now.UnixMilli()), "looks like milliseconds"},
		{"Missing", "", "missing"},
		{"Fraction", "1795643705.5", "not a Unix time"},
		{"Negative", "-1", "not a Unix time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := a.webhookTimestamp(tt.ts)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.Equal(t, steward.CodeUnauthorized, steward.ErrorCode(err))
			require.Contains(t, steward.ErrorMessage(err), tt.want)
		})
	}
}
