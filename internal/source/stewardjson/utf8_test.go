package stewardjson_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
)

// Invalid UTF-8 in an identifier used to be replaced with U+FFFD by the
// JSON decoder, so vm-\xff and vm-\xfe became one resource and the
// Healthy record hid the Unhealthy one.
func TestInvalidUTF8Rejected(t *testing.T) {
	t.Parallel()
	row := func(id, status string) string {
		return `{"resource":{"id":"` + id + `","cloud":"azure"},"recommendation":{"key":"rec-a","severity":"High"},"status":"` + status + `"}`
	}
	tests := []struct {
		title, in, want string
	}{
		{"resource id, document",
			`{"assessments":[` + row("/subscriptions/u8/vm-\xff", "Unhealthy") + `,` + row("/subscriptions/u8/vm-\xfe", "Healthy") + `]}`,
			"record 1 (line 1): resource.id is not valid UTF-8"},
		{"resource id, second line",
			row("/subscriptions/u8/vm-ok", "Unhealthy") + "\n" + row("/subscriptions/u8/vm-\xfe", "Healthy") + "\n",
			"record 2 (line 2): resource.id is not valid UTF-8"},
		{"escaped replacement character",
			row(`/subscriptions/u8/vm-\ufffd`, "Healthy"),
			"record 1 (line 1): resource.id is not valid UTF-8"},
		{"recommendation key",
			`{"resource":{"id":"/s/vm","cloud":"azure"},"recommendation":{"key":"rec-` + "\xc3" + `","severity":"High"},"status":"Healthy"}`,
			"record 1 (line 1): recommendation.key is not valid UTF-8"},
		{"resource name",
			`{"resource":{"id":"/s/vm","name":"vm` + "\xff" + `","cloud":"azure"},"recommendation":{"key":"rec-a","severity":"High"},"status":"Healthy"}`,
			"record 1 (line 1): resource.name is not valid UTF-8"},
		{"display name",
			`{"resource":{"id":"/s/vm","cloud":"azure"},"recommendation":{"key":"rec-a","display_name":"Check ` + "\xed\xa0\x80" + `","severity":"High"},"status":"Healthy"}`,
			"record 1 (line 1): recommendation.display_name is not valid UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.title, func(t *testing.T) {
			t.Parallel()
			_, err := parse(t, []byte(tc.in))
			require.Error(t, err)
			require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err), err.Error())
			require.Equal(t, tc.want, steward.ErrorMessage(err))
		})
	}

	t.Run("valid non-ASCII is kept", func(t *testing.T) {
		t.Parallel()
		obs, err := parse(t, []byte(row("/subscriptions/u8/vm-ü-日本", "Healthy")))
		require.NoError(t, err)
		require.Equal(t, "/subscriptions/u8/vm-ü-日本", obs[0].Resource.ID)
	})
}
