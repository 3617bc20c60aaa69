package secret_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/secret"
)

const value = "hunter2-must-not-leak"

func TestString_NeverPrints(t *testing.T) {
	t.Parallel()

	s := secret.New(value)
	type config struct {
		User     string
		Password secret.String
		Ptr      *secret.String
	}
	cfg := config{User: "u", Password: s, Ptr: &s}

	outputs := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s"} {
		outputs["fmt "+verb] = fmt.Sprintf(verb, s)
		outputs["fmt struct "+verb] = fmt.Sprintf(verb, cfg)
	}
	outputs["String"] = s.String()
	outputs["Sprint"] = fmt.Sprint(s, &s)
	outputs["Errorf"] = fmt.Errorf("login with %v: %w", s, errors.New("x")).Error()
	j, err := json.Marshal(cfg)
	require.NoError(t, err)
	outputs["json"] = string(j)
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&buf, nil), slog.NewJSONHandler(&buf, nil)} {
		slog.New(h).Info("msg", "password", s, "cfg", cfg, slog.Any("any", s))
	}
	outputs["slog"] = buf.String()

	for name, out := range outputs {
		require.NotContains(t, out, value, name)
		require.NotContains(t, out, fmt.Sprintf("%x", value), name)
	}
	require.Contains(t, outputs["fmt %v"], secret.Redacted)
	require.Contains(t, outputs["json"], `"Password":"[redacted]"`)
	require.Equal(t, value, s.Reveal())
}

func TestString_Zero(t *testing.T) {
	t.Parallel()

	var s secret.String
	require.True(t, s.IsZero())
	require.Empty(t, s.String())
	require.False(t, secret.New("x").IsZero())
	require.Equal(t, secret.New("x"), secret.New("x"))
}

func TestString_Unmarshal(t *testing.T) {
	t.Parallel()

	var v struct{ Password secret.String }
	require.NoError(t, json.Unmarshal([]byte(`{"Password":"`+value+`"}`), &v))
	require.Equal(t, value, v.Password.Reveal())
	require.Error(t, json.Unmarshal([]byte(`{"Password":1}`), &v))

	var s secret.String
	require.NoError(t, s.UnmarshalText([]byte(value)))
	require.Equal(t, value, s.Reveal())
}

func TestBox(t *testing.T) {
	t.Parallel()

	key := make([]byte, secret.KeySize)
	_, _ = rand.Read(key)
	box, err := secret.NewBox(key)
	require.NoError(t, err)

	ctx := []byte("integration/1/password")
	sealed, err := box.Seal(secret.New(value), ctx)
	require.NoError(t, err)
	require.NotContains(t, string(sealed), value)

	got, err := box.Open(sealed, ctx)
	require.NoError(t, err)
	require.Equal(t, value, got.Reveal())

	again, err := box.Seal(secret.New(value), ctx)
	require.NoError(t, err)
	require.NotEqual(t, sealed, again, "nonces must differ")

	t.Run("WrongContext", func(t *testing.T) {
		t.Parallel()
		_, err := box.Open(sealed, []byte("integration/2/password"))
		require.ErrorIs(t, err, secret.ErrOpen)
	})
	t.Run("WrongKey", func(t *testing.T) {
		t.Parallel()
		other := make([]byte, secret.KeySize)
		b2, err := secret.NewBox(other)
		require.NoError(t, err)
		_, err = b2.Open(sealed, ctx)
		require.ErrorIs(t, err, secret.ErrOpen)
	})
	t.Run("Tampered", func(t *testing.T) {
		t.Parallel()
		bad := bytes.Clone(sealed)
		bad[len(bad)-1] ^= 1
		_, err := box.Open(bad, ctx)
		require.ErrorIs(t, err, secret.ErrOpen)
	})
	t.Run("Truncated", func(t *testing.T) {
		t.Parallel()
		_, err := box.Open(sealed[:10], ctx)
		require.ErrorIs(t, err, secret.ErrOpen)
		_, err = box.Open(nil, ctx)
		require.ErrorIs(t, err, secret.ErrOpen)
	})
	t.Run("BadKeySize", func(t *testing.T) {
		t.Parallel()
		_, err := secret.NewBox(key[:16])
		require.Error(t, err)
	})
}
