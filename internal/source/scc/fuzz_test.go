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
	// Seeds are single records of the test data: whole files (21 KB) make
	// the fuzzer spend its time minimizing them.
	b, err := os.ReadFile(filepath.Join(dir, "findings.jsonl"))
	if err != nil {
		f.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	for _, i := range []int{0, 3, 6, 8} { // a bucket, an organization, AWS, prose category
		f.Add(lines[i])
	}
	f.Add(append(append([]byte(`{"listFindingsResults":[`), lines[2]...), `],"totalSize":1}`...))
	f.Add(append(append([]byte("[\n"), lines[4]...), "\n]"...))
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
