package jsonstream_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/internal/jsonstream"
)

// walk reads {"a": [..], ...} with Doc, counting the elements of "a" as
// records, and returns the error message.
func walk(in string) string {
	d := jsonstream.NewDoc(strings.NewReader(in))
	if _, err := d.Start("a test document"); err != nil {
		return err.Error()
	}
	err := d.Object("the document", func(key string) error {
		if key != "a" {
			return d.Skip()
		}
		return d.Array("a", func(int) error {
			d.N++
			return d.Skip()
		})
	})
	if err == nil {
		err = d.End("document")
	}
	if err == nil {
		return ""
	}
	if _, ok := errors.AsType[*steward.Error](err); !ok {
		return "not a *steward.Error: " + err.Error()
	}
	return steward.ErrorMessage(err)
}

func TestDoc(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a": [1, 2], "b": {"x": 1}}`, ""},
		{`{"a": null}`, ""},
		{`{}`, ""},
		{"  ", "input is empty (want a test document)"},
		{`{"a": [1, 2`, "record 3 (line 1): unexpected end of input after record 2"},
		{"{\"a\": [1,\n 2 3]}", "record 3 (line 2): malformed JSON at byte offset 13: expected ',' or ']' in a, found a number"},
		{`{"a": 5}`, "record 1 (line 1): a: expected an array, found a number"},
		{`[1]`, "record 1 (line 1): the document: expected an object, found an array"},
		{"{\"a\": [1]}\n{", "record 2 (line 2): unexpected an object after the end of the document"},
	} {
		if got := walk(tc.in); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

// records reads an array of records (or JSON Lines) with Elements or
// Lines, Record and UnmarshalRecord, and returns the error message.
func records(in string) string {
	d := jsonstream.NewDoc(strings.NewReader(in))
	d.WrapReadErrors = true
	one := func(v jsonstream.Value) error {
		if err := d.Record(context.Background(), v, "a record object"); err != nil {
			return err
		}
		var x struct{ A int }
		return jsonstream.UnmarshalRecord(d.N, v, &x)
	}
	c, err := d.Start("records")
	if err == nil && c == '[' {
		err = d.Elements("'['", "a record", one)
		if err == nil {
			err = d.End("array")
		}
	} else if err == nil {
		err = d.Lines(one)
	}
	if err == nil {
		return ""
	}
	if _, ok := errors.AsType[*steward.Error](err); !ok {
		return "not a *steward.Error: " + err.Error()
	}
	return steward.ErrorMessage(err)
}

func TestDocRecords(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`[{"A": 1}, {}]`, ""},
		{`[]`, ""},
		{"{\"A\": 1}\n{\"A\": 2}\n", ""},
		{`[{"A": 1}, 2]`, "record 2 (line 1): expected a record object, found a number"},
		{"{\"A\": 1}\n{\"A\": \"x\"}", "record 2 (line 2): A: expected a number, got string"},
		{`[{} {}]`, "record 2 (line 1): malformed JSON at byte offset 4: expected ',' or ']' after a record, found an object"},
		{`[{}, `, "record 2 (line 1): unexpected end of input after record 1"},
		{`[] 1`, "record 1 (line 1): unexpected a number after the end of the array"},
	} {
		if got := records(tc.in); got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestDocReadErrors(t *testing.T) {
	boom := errors.New("boom")
	for _, wrap := range []bool{false, true} {
		d := jsonstream.NewDoc(iotest.ErrReader(boom))
		d.WrapReadErrors = wrap
		_, err := d.Start("x")
		want := "boom"
		if wrap {
			want = "read input after record 0: boom"
		}
		if !errors.Is(err, boom) || err.Error() != want {
			t.Errorf("wrap %v: got %v, want %q", wrap, err, want)
		}
	}
}

func TestDocFields(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`{"a": 1, "b": [2]}`, "a,b"},
		{`{"a": 1 "b": 2}`, `record 1 (line 1): malformed JSON at byte offset 8: expected ',' or '}' after a field, found a string`},
		{`[1]`, `record 1 (line 1): malformed JSON at byte offset 0: expected '{', found an array`},
		{`{"a": 1,`, "record 1 (line 1): unexpected end of input after record 0"},
	} {
		d := jsonstream.NewDoc(strings.NewReader(tc.in))
		var keys []string
		err := d.Fields("',' or '}' after a field", func(key string) error {
			keys = append(keys, key)
			return d.Skip()
		})
		got := strings.Join(keys, ",")
		if err != nil {
			got = steward.ErrorMessage(err)
		}
		if got != tc.want {
			t.Errorf("%q: got %q, want %q", tc.in, got, tc.want)
		}
	}
}
