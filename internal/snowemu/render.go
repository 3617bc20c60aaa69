package snowemu

import (
	"strings"
	"unicode/utf8"
)

// renderOpts are the parameters that shape how records render (§2.3, §2.4).
type renderOpts struct {
	display     string   // "false", "true" or "all"
	excludeLink bool     // sysparm_exclude_reference_link
	fields      []string // sysparm_fields; nil means all fields in dictionary order
	base        string   // instance URL, no trailing slash
	version     string   // "", "v1/" or "v2/": links use the request's version (§2.4)
}

func parseDisplay(v string) string {
	switch strings.ToLower(v) {
	case "true":
		return "true"
	case "all":
		return "all"
	}
	return "false"
}

// parseFields splits sysparm_fields, keeping request order and dropping
// duplicates and empties. Unknown names are filtered at render time.
func parseFields(v string) []string {
	if strings.TrimSpace(v) == "" {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" || seen[f] {
			continue
		}
		seen[f] = true
		out = append(out, f)
	}
	return out
}

// renderRecordLocked appends the JSON object of one record.
func (e *Emulator) renderRecordLocked(b []byte, def *tableDef, fields map[string]string, o *renderOpts) []byte {
	b = append(b, '{')
	first := true
	emit := func(key string, f *fieldDef, v string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, key)
		b = append(b, ':')
		b = e.renderValueLocked(b, f, v, o)
	}
	if o.fields == nil {
		for _, f := range def.fields {
			emit(f.name, f, fields[f.name])
		}
	} else {
		qc := &queryCtx{e: e, def: def}
		for _, name := range o.fields {
			path := qc.resolvePath(name)
			if path == nil {
				continue // §2.3: unknown names are silently ignored
			}
			emit(name, path[len(path)-1], qc.value(fields, path))
		}
	}
	return append(b, '}')
}

// renderValueLocked renders one value per the matrix of §2.4.
func (e *Emulator) renderValueLocked(b []byte, f *fieldDef, v string, o *renderOpts) []byte {
	if f.kind == kindReference {
		if v == "" {
			if o.display == "all" {
				return append(b, `{"display_value":"","value":""}`...)
			}
			return append(b, `""`...) // empty references render as "" (§2.4)
		}
		link := func(b []byte) []byte {
			b = append(b, `"link":`...)
			return appendJSONString(b, o.base+"/api/now/"+o.version+"table/"+f.refTable+"/"+v)
		}
		switch o.display {
		case "true":
			d := e.displayLocked(f, v)
			if o.excludeLink {
				return appendJSONString(b, d)
			}
			b = append(b, `{"display_value":`...)
			b = appendJSONString(b, d)
			b = append(b, ',')
			b = link(b)
			return append(b, '}')
		case "all":
			b = append(b, `{"display_value":`...)
			b = appendJSONString(b, e.displayLocked(f, v))
			b = append(b, ',')
			if !o.excludeLink {
				b = link(b)
				b = append(b, ',')
			}
			b = append(b, `"value":`...)
			b = appendJSONString(b, v)
			return append(b, '}')
		default:
			if o.excludeLink {
				return appendJSONString(b, v)
			}
			b = append(b, '{')
			b = link(b)
			b = append(b, `,"value":`...)
			b = appendJSONString(b, v)
			return append(b, '}')
		}
	}
	switch o.display {
	case "true":
		return appendJSONString(b, e.displayLocked(f, v))
	case "all":
		b = append(b, `{"display_value":`...)
		b = appendJSONString(b, e.displayLocked(f, v))
		b = append(b, `,"value":`...)
		b = appendJSONString(b, v)
		return append(b, '}')
	}
	return appendJSONString(b, v)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string without HTML escaping (the
// platform does not escape <, > and &).
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
