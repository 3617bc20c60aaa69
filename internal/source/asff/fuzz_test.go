package asff_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/asff"
)

// FuzzParse checks that no input makes the parser panic, that every error
// is a CodeInvalid *steward.Error naming a record (or the empty input), and
// that every observation it yields is valid.
func FuzzParse(f *testing.F) {
	// Small seeds only: the fuzzer minimizes every new input it finds
	// interesting, which on the whole 9–100 KB samples takes minutes. The
	// first line of the Prowler sample (JSON Lines) stands for them.
	b, err := os.ReadFile(filepath.Join(dir, "prowler-sample.asff-json"))
	if err != nil {
		f.Fatal(err)
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	f.Add(line)
	f.Add([]byte(finding))
	f.Add([]byte(`{"Findings": [` + finding + `], "NextToken": "x"}`))
	f.Add([]byte(`[` + finding + `]`))
	f.Add([]byte(`{"Findings": [`))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := asff.Parser{}.Parse(context.Background(), bytes.NewReader(b), func(o steward.Observation) error {
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
		if !bytes.Contains([]byte(se.Message), []byte("record ")) && !bytes.Contains([]byte(se.Message), []byte("input is empty")) &&
			!bytes.Contains([]byte(se.Message), []byte(`no "Findings" array`)) {
			t.Fatalf("error names no record: %s", se.Message)
		}
	})
}
