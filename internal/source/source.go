// Package source turns finding files into steward.Observation streams: the
// Parser seam, format names and format sniffing. Each format lives in its
// own subpackage (stewardjson, ocsf, sarif, checkov, asff, scc); this
// package picks one.
//
// # Contract
//
// A Parser streams: it holds one record at a time, so a file of a million
// records (hundreds of MB) parses in constant memory. Records reach yield in
// input order. Bad input stops the parse with a *steward.Error of
// steward.CodeInvalid built by steward.InvalidRecord, whose message names
// the record (1-based), the line where the format has lines, and what is
// wrong; a file that ends early says "unexpected end of input after record
// N". An error returned by yield, or the context's error, stops the parse
// and is returned unchanged. Observations a parser yields have passed
// steward.Observation.Validate.
//
// The import direction is source → format packages: the format packages
// import only the shared internal/jsonstream (and checkov imports sarif for
// the shared file resource IDs), so ParserFor can name them without a
// registry.
package source

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"strings"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/asff"
	"github.com/stewardhq/steward/internal/source/checkov"
	"github.com/stewardhq/steward/internal/source/internal/jsonstream"
	"github.com/stewardhq/steward/internal/source/ocsf"
	"github.com/stewardhq/steward/internal/source/sarif"
	"github.com/stewardhq/steward/internal/source/scc"
	"github.com/stewardhq/steward/internal/source/stewardjson"
)

// Parser streams observations from a finding file.
type Parser interface {
	// Parse calls yield for each observation of r in input order. It is
	// safe for concurrent use on different readers. See the package doc for
	// the errors it returns.
	Parse(ctx context.Context, r io.Reader, yield func(steward.Observation) error) error
}

// Format names a file format. The names are stored with imports and
// accepted by the API and CLI: never rename one.
type Format string

// The supported formats.
const (
	FormatSteward Format = "steward" // Steward JSON document or JSON Lines (docs/formats.md)
	FormatOCSF    Format = "ocsf"    // OCSF 1.x findings, e.g. Prowler -M json-ocsf
	FormatSARIF   Format = "sarif"   // SARIF 2.1 logs: Trivy, Checkov, Semgrep, CodeQL, ...
	FormatCheckov Format = "checkov" // Checkov's JSON report (checkov -o json)
	FormatASFF    Format = "asff"    // AWS Security Finding Format (Security Hub)
	FormatSCC     Format = "scc"     // Google Security Command Center findings, JSON export
)

// Formats lists the supported formats.
var Formats = []Format{FormatSteward, FormatOCSF, FormatSARIF, FormatCheckov, FormatASFF, FormatSCC}

const supported = `supported formats: "steward" (Steward JSON: {"assessments": [...]} or JSON Lines of assessments), ` +
	`"ocsf" (OCSF 1.x findings as a JSON array, e.g. prowler -M json-ocsf), ` +
	`"sarif" (SARIF 2.1: Trivy, Checkov, Semgrep, CodeQL and other scanners), ` +
	`"checkov" (checkov -o json), ` +
	`"asff" (AWS Security Hub findings: {"Findings": [...]}, an array or JSON Lines) and ` +
	`"scc" (Google Security Command Center findings exported as JSON)`

// ParseFormat checks a user-supplied format name; "" stays "" (detect).
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	switch f {
	case "", FormatSteward, FormatOCSF, FormatSARIF, FormatCheckov, FormatASFF, FormatSCC:
		return f, nil
	case "json", "jsonl", "stewardjson", "steward-json":
		return FormatSteward, nil
	case "json-ocsf", "prowler":
		return FormatOCSF, nil
	case "sarif-2.1", "sarif2.1", "sarif-2.1.0":
		return FormatSARIF, nil
	case "checkov-json":
		return FormatCheckov, nil
	case "securityhub", "security-hub", "asff-json":
		return FormatASFF, nil
	case "securitycenter", "security-command-center", "gcp-scc":
		return FormatSCC, nil
	}
	return "", steward.Errorf(steward.CodeInvalid, "unknown format %q; %s", s, supported)
}

// ParserFor returns the parser of f.
func ParserFor(f Format) (Parser, error) {
	switch f {
	case FormatSteward:
		return stewardjson.Parser{}, nil
	case FormatOCSF:
		return ocsf.Parser{}, nil
	case FormatSARIF:
		return sarif.Parser{}, nil
	case FormatCheckov:
		return checkov.Parser{}, nil
	case FormatASFF:
		return asff.Parser{}, nil
	case FormatSCC:
		return scc.Parser{}, nil
	}
	return nil, steward.Errorf(steward.CodeInvalid, "unknown format %q; %s", string(f), supported)
}

// HeadSize is how much of an input Open peeks at to detect its format.
const HeadSize = 64 << 10

// Detect sniffs the format from the first bytes of an input (HeadSize is
// plenty), most specific first:
//
//  1. a SARIF log (sarif.Sniff: a top-level "$schema" naming SARIF, or a
//     string "version" with "runs", whatever the key order) is "sarif";
//  2. a JSON object whose first key is a Steward document key
//     ("assessments", "version") is "steward";
//  3. Checkov's report (checkov.Sniff), ASFF (asff.Sniff: first key
//     "Findings", or ASFF's required keys) and SCC findings (scc.Sniff) are
//     "checkov", "asff" and "scc";
//  4. a JSON object whose first key is a Steward record key is "steward";
//  5. a JSON array (or object) of objects carrying OCSF's "class_uid",
//     "finding_info", "type_uid" or "metadata.event_code" is "ocsf".
//
// Anything else is a CodeInvalid error that lists the supported formats.
func Detect(head []byte) (Format, error) {
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	if len(trimmed) == 0 {
		return "", steward.Errorf(steward.CodeInvalid, "input is empty; %s", supported)
	}
	if trimmed[0] != '{' && trimmed[0] != '[' {
		return "", steward.Errorf(steward.CodeInvalid, "cannot tell the format of the input (it is not JSON); %s", supported)
	}
	if sarif.Sniff(trimmed) {
		return FormatSARIF, nil
	}
	key := ""
	if trimmed[0] == '{' {
		key = jsonstream.FirstKey(trimmed)
		if stewardjson.IsDocumentKey(key) {
			return FormatSteward, nil
		}
	}
	switch {
	case checkov.Sniff(trimmed):
		return FormatCheckov, nil
	case asff.Sniff(trimmed):
		return FormatASFF, nil
	case scc.Sniff(trimmed):
		return FormatSCC, nil
	case trimmed[0] == '{' && isRecordKey(key):
		return FormatSteward, nil
	}
	for _, mark := range []string{`"class_uid"`, `"finding_info"`, `"type_uid"`, `"event_code"`} {
		if bytes.Contains(trimmed, []byte(mark)) {
			return FormatOCSF, nil
		}
	}
	return "", steward.Errorf(steward.CodeInvalid, "cannot tell the format of the input; %s", supported)
}

func isRecordKey(key string) bool {
	for _, k := range stewardjson.RecordKeys {
		if k == key {
			return true
		}
	}
	return false
}

// Open prepares r for parsing: it detects the format when format is ""
// (peeking at up to HeadSize bytes), and returns the parser, a reader that
// still yields every byte of r, and the format used.
func Open(r io.Reader, format Format) (Parser, io.Reader, Format, error) {
	br := bufio.NewReaderSize(r, HeadSize)
	if format == "" {
		head, err := br.Peek(HeadSize)
		if err != nil && err != io.EOF && err != bufio.ErrBufferFull {
			return nil, nil, "", err
		}
		format, err = Detect(head)
		if err != nil {
			return nil, nil, "", err
		}
	}
	p, err := ParserFor(format)
	if err != nil {
		return nil, nil, "", err
	}
	return p, br, format, nil
}
