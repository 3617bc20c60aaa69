package ocsf_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/ocsf"
)

// FuzzParse checks that no input makes the parser panic, that every error
// is a CodeInvalid *steward.Error naming a record (or the empty input), and
// that every observation it yields is valid.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"prowler_example_output_aws.ocsf.json", "prowler_example_output_azure.ocsf.json", "prowler_example_output_gcp.ocsf.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"class_uid": 2004, "metadata": {"event_code": "c"}, "cloud": {"provider": "gcp", "account": {"uid": "p"}}, "severity": "High", "status_code": "FAIL", "resources": [{"uid": "r", "labels": ["a:b"]}]}`))
	f.Add([]byte(`[{"class_uid": 2004`))
	f.Fuzz(func(t *testing.T, b []byte) {
		err := ocsf.Parser{}.Parse(context.Background(), bytes.NewReader(b), func(o steward.Observation) error {
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
		if !strings.HasPrefix(se.Message, "record ") && !strings.HasPrefix(se.Message, "input is empty") {
			t.Fatalf("error names no record: %s", se.Message)
		}
	})
}
