// Package source turns finding files into steward.Observation streams: the
// Parser seam, format names and format sniffing. Each format lives in its
// own subpackage (stewardjson, ocsf); this package picks one.
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
// The import direction is source → {stewardjson, ocsf}: the format packages
// import only the shared internal/jsonstream, so ParserFor can name them
// without a registry.
package source

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/ocsf"
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
)

// Formats lists the supported formats.
var Formats = []Format{FormatSteward, FormatOCSF}

const supported = `supported formats: "steward" (Steward JSON: {"assessments": [...]} or JSON Lines of assessments) and "ocsf" (OCSF 1.x findings as a JSON array, e.g. prowler -M json-ocsf)`

// ParseFormat checks a user-supplied format name; "" stays "" (detect).
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	switch f {
	case "", FormatSteward, FormatOCSF:
		return f, nil
	case "json", "jsonl", "stewardjson", "steward-json":
		return FormatSteward, nil
	case "json-ocsf", "prowler":
		return FormatOCSF, nil
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
	}
	return nil, steward.Errorf(steward.CodeInvalid, "unknown format %q; %s", string(f), supported)
}

// HeadSize is how much of an input Open peeks at to detect its format.
const HeadSize = 64 << 10

// Detect sniffs the format from the first bytes of an input (HeadSize is
// plenty): a SARIF log (a top-level "$schema" naming SARIF, or a string
// "version" with "runs") is refused as not supported yet, whatever its key
// order; a JSON object whose first key belongs to Steward's format is
// "steward"; a JSON array (or object) of objects carrying OCSF's
// "class_uid", "finding_info", "type_uid" or "metadata.event_code" is "ocsf". Anything else is a CodeInvalid
// error that lists the supported formats and, where it recognises the
// input, says what it is.
func Detect(head []byte) (Format, error) {
	head = bytes.TrimPrefix(head, []byte("\xef\xbb\xbf"))
	trimmed := bytes.TrimLeft(head, " \t\r\n")
	if len(trimmed) == 0 {
		return "", steward.Errorf(steward.CodeInvalid, "input is empty; %s", supported)
	}
	ocsfMarks := false
	for _, mark := range []string{`"class_uid"`, `"finding_info"`, `"type_uid"`, `"event_code"`} {
		ocsfMarks = ocsfMarks || bytes.Contains(trimmed, []byte(mark))
	}
	switch trimmed[0] {
	case '{':
		// Before the Steward keys: SARIF also starts with "version" at
		// times (Trivy writes it first).
		if looksLikeSARIF(trimmed) {
			return "", steward.Errorf(steward.CodeInvalid, "this looks like SARIF, which is not supported yet; %s", supported)
		}
		key := firstKey(trimmed)
		if stewardjson.IsDocumentKey(key) || isRecordKey(key) {
			return FormatSteward, nil
		}
		if ocsfMarks {
			return FormatOCSF, nil
		}
		if key == "Findings" {
			return "", steward.Errorf(steward.CodeInvalid, "this looks like AWS Security Hub ASFF, which is not supported yet; %s", supported)
		}
	case '[':
		if ocsfMarks {
			return FormatOCSF, nil
		}
	}
	return "", steward.Errorf(steward.CodeInvalid, "cannot tell the format of the input; %s", supported)
}

// looksLikeSARIF reports whether the object b starts with is a SARIF log:
// its top level has a "$schema" naming SARIF, or "runs" next to a string
// "version" (a Steward document's is a number) or a mention of SARIF. Only
// top-level keys count, read as far as the head goes (a value may run past
// it): a Steward record may well mention SARIF in its text.
func looksLikeSARIF(b []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return false
	}
	var stringVersion, runs bool
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		key, _ := tok.(string)
		runs = runs || key == "runs"
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			break
		}
		var s string
		switch {
		case key == "$schema" && json.Unmarshal(v, &s) == nil && strings.Contains(strings.ToLower(s), "sarif"):
			return true
		case key == "version" && json.Unmarshal(v, &s) == nil:
			stringVersion = true
		}
	}
	return runs && (stringVersion || bytes.Contains(bytes.ToLower(b), []byte("sarif")))
}

func isRecordKey(key string) bool {
	for _, k := range stewardjson.RecordKeys {
		if k == key {
			return true
		}
	}
	return false
}

// firstKey returns the first key of the JSON object that b starts with.
func firstKey(b []byte) string {
	b = bytes.TrimLeft(b[1:], " \t\r\n")
	if len(b) == 0 || b[0] != '"' {
		return ""
	}
	end := bytes.IndexByte(b[1:], '"')
	if end < 0 {
		return ""
	}
	return string(b[1 : 1+end])
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
