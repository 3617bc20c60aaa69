package jsonstream_test

import (
	"errors"
	"strings"
	"testing"

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
