package scc_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/scc"
)

// FuzzParse checks that any input either parses into valid observations or
// is refused with a CodeInvalid error naming a record, and never panics.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"findings.jsonl", "list_findings_page.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte(`[{"finding":{"resourceName":"//storage.googleapis.com/b","category":"X","state":"ACTIVE"},"resource":{"gcpMetadata":{"projectDisplayName":"p"}}}]`))
	f.Add([]byte(`{"listFindingsResults":[],"totalSize":0}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		err := scc.Parser{}.Parse(t.Context(), bytes.NewReader(in), func(o steward.Observation) error {
			if err := o.Validate(); err != nil {
				t.Fatalf("invalid observation: %v", err)
			}
			return nil
		})
		if err != nil && steward.ErrorCode(err) != steward.CodeInvalid {
			t.Fatalf("error is not CodeInvalid: %v", err)
		}
	})
}
