package jsonstream_test

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/source/internal/jsonstream"
)

const input = "\xef\xbb\xbf [ {\"a\\\"]}\": \"x\\\\\", \"b\": [1, {\"c\": \"}\"}]},\n" +
	"  \"str\\\"ing\" , -12.5e3,true, null,\n{}\n]"

func values(t *testing.T, r io.Reader) ([]string, []int) {
	t.Helper()
	jr := jsonstream.NewReader(r)
	require.NoError(t, jr.Consume('[', "'['"))
	var out []string
	var lines []int
	for {
		v, err := jr.Next()
		require.NoError(t, err)
		out = append(out, string(v.Bytes))
		lines = append(lines, v.Line)
		c, err := jr.Peek()
		require.NoError(t, err)
		if c == ']' {
			break
		}
		require.NoError(t, jr.Consume(',', "','"))
	}
	require.NoError(t, jr.Consume(']', "']'"))
	_, err := jr.Peek()
	require.Equal(t, io.EOF, err)
	return out, lines
}

func TestValues(t *testing.T) {
	t.Parallel()
	want := []string{`{"a\"]}": "x\\", "b": [1, {"c": "}"}]}`, `"str\"ing"`, `-12.5e3`, `true`, `null`, `{}`}
	wantLines := []int{1, 2, 2, 2, 2, 3}
	for name, r := range map[string]func() io.Reader{
		"whole":    func() io.Reader { return strings.NewReader(input) },
		"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(input)) },
		"half":     func() io.Reader { return iotest.HalfReader(strings.NewReader(input)) },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, lines := values(t, r())
			require.Equal(t, want, got)
			require.Equal(t, wantLines, lines)
		})
	}
}

func TestTruncatedAndErrors(t *testing.T) {
	t.Parallel()
	for _, in := range []string{`{"a": "b`, `{"a": "b\`, `{"a": [1, 2}`, `"abc`} {
		_, err := jsonstream.NewReader(iotest.OneByteReader(strings.NewReader(in))).Next()
		require.ErrorIs(t, err, jsonstream.ErrTruncated, in)
	}
	boom := errors.New("boom")
	_, err := jsonstream.NewReader(iotest.DataErrReader(io.MultiReader(strings.NewReader(`{"a":`), iotest.ErrReader(boom)))).Next()
	require.ErrorIs(t, err, boom)

	jr := jsonstream.NewReader(strings.NewReader("\n\n  ]"))
	_, err = jr.Next()
	var se *jsonstream.SyntaxError
	require.ErrorAs(t, err, &se)
	require.Equal(t, "expected a value, found ']' at line 3 (byte offset 4)", se.Error())
}

func TestPeekKey(t *testing.T) {
	t.Parallel()
	jr := jsonstream.NewReader(iotest.OneByteReader(strings.NewReader(" {\n \"as\\u0073essments\": []}")))
	key, ok := jr.PeekKey()
	require.True(t, ok)
	require.Equal(t, "assessments", key)
	v, err := jr.Next()
	require.NoError(t, err)
	require.Equal(t, "{\n \"as\\u0073essments\": []}", string(v.Bytes))
}
