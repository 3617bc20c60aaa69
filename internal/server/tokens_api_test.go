package server_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/apiclient"
)

// TestTokenCreateErrorsNameTheirField: a refused token create says which
// field it is about (error.field), so the UI's form shows it there.
func TestTokenCreateErrorsNameTheirField(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := t.Context()
	_, err := b.client.CreateToken(ctx, steward.TokenCreate{Name: "ci", Role: steward.RoleReader})
	require.NoError(t, err)
	for _, tc := range []struct {
		req    steward.TokenCreate
		status int
		field  string
	}{
		{steward.TokenCreate{Name: "", Role: steward.RoleReader}, 400, "name"},
		{steward.TokenCreate{Name: "-bad", Role: steward.RoleReader}, 400, "name"},
		{steward.TokenCreate{Name: "ci", Role: steward.RoleReader}, 409, "name"},
		{steward.TokenCreate{Name: "ok", Role: "king"}, 400, "role"},
		{steward.TokenCreate{Name: "ok", Role: steward.RoleReader, Scope: "/a\nb"}, 400, "scope"},
		{steward.TokenCreate{Name: "ok", Role: steward.RoleReader, Expires: "tomorrow"}, 400, "expires"},
	} {
		_, err := b.client.CreateToken(ctx, tc.req)
		var apiErr *apiclient.Error
		require.True(t, errors.As(err, &apiErr), "%+v: want an API error, got %v", tc.req, err)
		require.Equal(t, tc.status, apiErr.Status, "%+v: %s", tc.req, apiErr.Message)
		require.Equal(t, tc.field, apiErr.Field, "%+v: %s", tc.req, apiErr.Message)
	}
}
