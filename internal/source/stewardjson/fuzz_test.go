package stewardjson_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/stewardjson"
)

// FuzzParse checks that no input makes the parser panic, that every error
// is a CodeInvalid *steward.Error naming a record (or the document), and
// that every observation it yields is valid.
func FuzzParse(f *testing.F) {
	golden, err := os.ReadFile("../../../testdata/findings/prowler_example_output_gcp.ocsf.golden.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(golden)
	f.Add([]byte(fmt.Sprintf(record, 1, 1, 1) + "\n" + fmt.Sprintf(record, 2, 2, 2) + "\n"))
	f.Add([]byte(`{"version": 1, "assessments": [` + fmt.Sprintf(record, 1, 1, 1) + `]}`))
	f.Add([]byte(`{"assessments": [`))
	f.Add([]byte(`{"version":`)) // the input ends where the version should be
	f.Fuzz(func(t *testing.T, b []byte) {
		err := stewardjson.Parser{}.Parse(context.Background(), bytes.NewReader(b), func(o steward.Observation) error {
			if err := o.Validate(); err != nil {
				t.Fatalf("invalid observation: %v", err)
			}
			return nil
		})
		if err == nil {
			return
		}
		se, ok := errors.AsType[*steward.Error](err)
		if !ok || se.Code != steward.CodeInvalid {
			t.Fatalf("error is not a CodeInvalid *steward.Error: %T %v", err, err)
		}
		// An error is about a record, or about the document as a whole
		// (empty, or without its "assessments" array).
		if !strings.HasPrefix(se.Message, "record ") && !strings.Contains(se.Message, "empty") &&
			!strings.HasPrefix(se.Message, "the document ") {
			t.Fatalf("error names no record: %s", se.Message)
		}
	})
}
