package ocsf_test

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
)

// The OCSF decoder replaces invalid UTF-8 with U+FFFD too; a resource UID
// with invalid bytes must be refused, not merged with its neighbours.
func TestInvalidUTF8Rejected(t *testing.T) {
	t.Parallel()
	in := array(t, finding(func(m map[string]any) {
		m["resources"] = []any{map[string]any{"uid": "arn:aws:s3:::bucket-PLACEHOLDER"}}
	}))
	in = bytes.Replace(in, []byte("PLACEHOLDER"), []byte("\xff"), 1)
	_, err := parseAll(t, in)
	require.Error(t, err)
	require.Equal(t, steward.CodeInvalid, steward.ErrorCode(err), err.Error())
	require.Equal(t, "record 1 (line 2): resources[0]: resource.id is not valid UTF-8", steward.ErrorMessage(err))

	in = array(t, finding(func(m map[string]any) {
		m["finding_info"] = map[string]any{"title": "Bucket is PLACEHOLDER"}
	}))
	in = bytes.Replace(in, []byte("PLACEHOLDER"), []byte("\xfe"), 1)
	_, err = parseAll(t, in)
	require.Error(t, err)
	require.Equal(t, "record 1 (line 2): resources[0]: recommendation.display_name is not valid UTF-8", steward.ErrorMessage(err))
}
