package pull

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
)

// TestCheckEndpoint: an endpoint override only for a loopback host with
// local: true; each refusal at its field.
func TestCheckEndpoint(t *testing.T) {
	for _, tc := range []struct {
		raw   string
		local bool
		field string // "" means accepted
	}{
		{"", false, ""},
		{"http://127.0.0.1:8443", true, ""},
		{"https://[::1]:9000", true, ""},
		{"http://localhost:1", true, ""},
		{"", true, "local"},
		{"http://127.0.0.1:8443", false, "local"},
		{"https://securityhub.us-east-1.amazonaws.com", true, "endpoint"},
		{"http://169.254.169.254", true, "endpoint"},
		{"http://10.0.0.5", true, "endpoint"},
		{"ftp://127.0.0.1", true, "endpoint"},
		{"http://user:pw@127.0.0.1", true, "endpoint"},
		{"http://127.0.0.1/?x=1", true, "endpoint"},
		{"not a url", true, "endpoint"},
	} {
		err := CheckEndpoint(tc.raw, tc.local, "AWS")
		if tc.field == "" {
			require.NoError(t, err, "%q local=%v", tc.raw, tc.local)
			continue
		}
		require.Error(t, err, "%q local=%v", tc.raw, tc.local)
		require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err))
		require.Equal(t, tc.field, steward.ErrorField(err), "%q local=%v: %v", tc.raw, tc.local, err)
	}
}
