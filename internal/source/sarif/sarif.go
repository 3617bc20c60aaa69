// Package sarif parses SARIF 2.1 logs (Trivy, Checkov, Semgrep, CodeQL,
// Flawfinder and any other tool that writes SARIF) into observations.
//
// Mapping to Steward (docs/formats.md and docs/sources.md have the table):
//
//   - a rule (runs[].tool.driver.rules[] or tool.extensions[].rules[], else
//     just a result's ruleId) is a recommendation keyed "<tool>:<ruleId>",
//     tool being driver.name lower-cased;
//   - a result's artifact (locations[].physicalLocation.artifactLocation) is
//     a resource /repos/<repo>/files/<path> (see ResourceID); a result
//     without a location is about the repository, /repos/<repo>;
//   - a result is Unhealthy (kind "fail", absent, "review" or "open"),
//     Healthy (kind "pass", or baselineState "absent": fixed since the
//     baseline), NotApplicable (kind "notApplicable", or suppressed with
//     status "accepted"); kind "informational" makes no observation.
//
// Absent results never make anything Healthy: a file listed in
// run.artifacts without a result for a rule says nothing about whether
// that rule ran on it, so only results say so.
//
// # Streaming
//
// A run's results may come before its tool (Flawfinder writes them first)
// and before the keys that name the repository and base URIs (Trivy writes
// originalUriBaseIds after its results), so the results of a run are
// spooled raw, in memory up to 1 MiB and in a temporary file beyond, and
// mapped when the run object ends. Memory grows with the number of rules
// and artifacts of a run and with the number of distinct (rule, resource)
// pairs (8 bytes each, to keep the worst status of a pair), not with the
// size of the results.
//
// A record is a result, numbered from 1 across the runs of the file.
package sarif

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/source/internal/jsonstream"
	"github.com/stewardhq/steward/internal/source/internal/worst"
)

// Parser reads SARIF 2.1 logs. The zero value is ready to use and safe
// for concurrent use.
type Parser struct{}

// Sniff reports whether the input starting with prefix is a SARIF log: a
// top-level "$schema" naming SARIF, or "runs" next to a string "version"
// (a Steward document's is a number) or a mention of SARIF. Only top-level
// keys count, read as far as prefix goes: a record of another format may
// well mention SARIF in its text.
func Sniff(prefix []byte) bool {
	b := bytes.TrimLeft(bytes.TrimPrefix(prefix, []byte("\xef\xbb\xbf")), " \t\r\n")
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

// Parse streams the observations of a SARIF log to yield. Errors are
// *steward.Error with CodeInvalid naming the record (result), except those
// of yield, ctx and the temporary spool file.
func (Parser) Parse(ctx context.Context, r io.Reader, yield func(steward.Observation) error) error {
	p := &parser{ctx: ctx, d: jsonstream.NewDoc(r), yield: yield, worst: worst.New()}
	return p.log()
}

// parser reads one log; the navigation (objects, arrays, errors naming
// the record) is jsonstream.Doc's, shared with the other file formats.
type parser struct {
	ctx   context.Context
	d     *jsonstream.Doc // d.N counts the results read so far
	yield func(steward.Observation) error
	worst *worst.Statuses // the worst status yielded per (recommendation, resource)
}

func (p *parser) log() error {
	c, err := p.d.Start("a SARIF 2.1 log")
	if err != nil {
		return err
	}
	if c != '{' {
		return p.d.Invalid(p.d.R.Line(), "expected a SARIF log object, found %s", jsonstream.Describe(c))
	}
	sawRuns := false
	err = p.d.Object("the SARIF log", func(key string) error {
		switch key {
		case "version":
			line := p.d.R.Line()
			var v any
			if err := p.d.Decode("version", &v); err != nil {
				return err
			}
			if s, ok := v.(string); !ok || !strings.HasPrefix(s, "2.1") {
				return p.d.Invalid(line, "version %v is not SARIF 2.1 (want \"2.1.0\")", jsonValue(v))
			}
			return nil
		case "runs":
			sawRuns = true
			return p.d.Array("runs", p.run)
		}
		return p.d.Skip()
	})
	if err != nil {
		return err
	}
	if !sawRuns {
		return p.d.Invalid(p.d.R.Line(), "runs is missing: this is not a SARIF log")
	}
	return p.d.End("SARIF log")
}

func jsonValue(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// run reads runs[i]: its results are spooled, the rest is kept, and the
// results are mapped at the end of the run.
func (p *parser) run(i int) error {
	run := &runInfo{index: i, rules: map[string]*rule{}}
	var sp spool
	defer sp.close()
	what := fmt.Sprintf("runs[%d]", i)
	toolLine := 0
	err := p.d.Object(what, func(key string) error {
		switch key {
		case "tool":
			toolLine = p.d.R.Line()
			var t tool
			if err := p.d.Decode(what+".tool", &t); err != nil {
				return err
			}
			run.setTool(&t)
			return nil
		case "results":
			return p.d.Array(what+".results", func(int) error {
				v, err := p.d.R.Next()
				if err != nil {
					return p.d.Fail(err)
				}
				if err := p.d.Record(p.ctx, v, "a result object"); err != nil {
					return err
				}
				return sp.add(p.d.N, v)
			})
		case "artifacts":
			return p.d.Array(what+".artifacts", func(j int) error {
				var a struct {
					Location artifactLocation `json:"location"`
				}
				if err := p.d.Decode(fmt.Sprintf("%s.artifacts[%d]", what, j), &a); err != nil {
					return err
				}
				run.artifacts = append(run.artifacts, a.Location)
				return nil
			})
		case "originalUriBaseIds":
			return p.d.Decode(what+".originalUriBaseIds", &run.bases)
		case "versionControlProvenance":
			return p.d.Decode(what+".versionControlProvenance", &run.vcp)
		case "invocations":
			var inv []struct {
				StartTimeUTC string `json:"startTimeUtc"`
				EndTimeUTC   string `json:"endTimeUtc"`
			}
			if err := p.d.Decode(what+".invocations", &inv); err != nil {
				return err
			}
			for _, in := range inv {
				for _, s := range []string{in.EndTimeUTC, in.StartTimeUTC} {
					if t, err := time.Parse(time.RFC3339Nano, s); err == nil && run.at.IsZero() {
						run.at = t.UTC()
					}
				}
			}
			return nil
		}
		return p.d.Skip()
	})
	if err != nil {
		return err
	}
	if sp.count == 0 {
		return nil
	}
	if run.tool == "" {
		return steward.InvalidRecord(sp.first, toolLine, fmt.Errorf("%s.tool.driver.name is missing (the tool, part of every recommendation key)", what))
	}
	decode := func(n int, v jsonstream.Value, res *result) error {
		if n%1024 == 0 {
			if err := p.ctx.Err(); err != nil {
				return err
			}
		}
		return jsonstream.UnmarshalRecord(n, v, res)
	}
	// First pass: the severity of each rule, the highest its results give.
	run.sev = map[string]steward.Severity{}
	err = sp.replay(func(n int, v jsonstream.Value) error {
		var res result
		if err := decode(n, v, &res); err != nil {
			return err
		}
		if err := run.severity(&res); err != nil {
			return steward.InvalidRecord(n, v.Line, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return sp.replay(func(n int, v jsonstream.Value) error {
		var res result
		if err := decode(n, v, &res); err != nil {
			return err
		}
		obs, err := run.observations(&res)
		if err != nil {
			return steward.InvalidRecord(n, v.Line, err)
		}
		for _, o := range obs {
			if !p.worst.Keep(o) {
				continue
			}
			if err := p.yield(o); err != nil {
				return err
			}
		}
		return nil
	})
}

// spool keeps a run's raw results, each as "<record> <line> <offset>"
// then the result, in memory and past memLimit in a temporary file.
type spool struct {
	mem   bytes.Buffer
	f     *os.File
	w     *bufio.Writer
	count int
	first int
}

const memLimit = 1 << 20

func (s *spool) add(n int, v jsonstream.Value) error {
	if s.count == 0 {
		s.first = n
	}
	s.count++
	var w io.Writer = &s.mem
	if s.f == nil && s.mem.Len()+len(v.Bytes) > memLimit {
		f, err := os.CreateTemp("", "steward-sarif-*.spool")
		if err != nil {
			return fmt.Errorf("spool SARIF results: %w", err)
		}
		s.f = f
		s.w = bufio.NewWriterSize(f, 256<<10)
		if _, err := s.w.Write(s.mem.Bytes()); err != nil {
			return fmt.Errorf("spool SARIF results: %w", err)
		}
		s.mem = bytes.Buffer{}
	}
	if s.w != nil {
		w = s.w
	}
	if _, err := fmt.Fprintf(w, "%d %d %d\n", n, v.Line, v.Offset); err != nil {
		return fmt.Errorf("spool SARIF results: %w", err)
	}
	if _, err := w.Write(v.Bytes); err != nil {
		return fmt.Errorf("spool SARIF results: %w", err)
	}
	if _, err := w.Write([]byte{'\n'}); err != nil {
		return fmt.Errorf("spool SARIF results: %w", err)
	}
	return nil
}

func (s *spool) replay(each func(n int, v jsonstream.Value) error) error {
	var r io.Reader = bytes.NewReader(s.mem.Bytes())
	if s.f != nil {
		if err := s.w.Flush(); err != nil {
			return fmt.Errorf("spool SARIF results: %w", err)
		}
		if _, err := s.f.Seek(0, io.SeekStart); err != nil {
			return fmt.Errorf("spool SARIF results: %w", err)
		}
		r = s.f
	}
	jr := jsonstream.NewReader(r)
	for range s.count {
		var hdr [3]int64
		for i := range hdr {
			v, err := jr.Next()
			if err != nil {
				return fmt.Errorf("read SARIF spool: %w", err)
			}
			if hdr[i], err = strconv.ParseInt(string(v.Bytes), 10, 64); err != nil {
				return fmt.Errorf("read SARIF spool: %w", err)
			}
		}
		v, err := jr.Next()
		if err != nil {
			return fmt.Errorf("read SARIF spool: %w", err)
		}
		v.Line, v.Offset = int(hdr[1]), hdr[2]
		if err := each(int(hdr[0]), v); err != nil {
			return err
		}
	}
	return nil
}

func (s *spool) close() {
	if s.f != nil {
		name := s.f.Name()
		_ = s.f.Close()
		_ = os.Remove(name)
		s.f = nil
	}
}
