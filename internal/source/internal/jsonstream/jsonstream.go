// Package jsonstream splits a JSON input into values without holding more
// than one value in memory, tracking the byte offset and line of each, so
// parsers can decode record by record and say exactly where a bad record is.
//
// It checks only the structure it needs to find value boundaries (strings,
// nesting); the values themselves are validated by whoever decodes them.
package jsonstream

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// ErrTruncated reports that the input ended inside a value or before the
// enclosing document was closed.
var ErrTruncated = errors.New("unexpected end of input")

// SyntaxError is a structural error at a position of the input.
type SyntaxError struct {
	Msg    string
	Offset int64 // byte offset in the input, 0-based
	Line   int   // 1-based
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("%s at line %d (byte offset %d)", e.Msg, e.Line, e.Offset)
}

const (
	minRead    = 256 << 10
	initialBuf = 512 << 10
)

// Reader reads JSON values from an io.Reader. The unread input is
// buf[start:end]; off and line describe buf[start].
type Reader struct {
	r          io.Reader
	buf        []byte
	start, end int
	off        int64
	line       int
	eof        bool
	readErr    error
}

// NewReader returns a Reader on r. A leading UTF-8 byte order mark is skipped.
func NewReader(r io.Reader) *Reader {
	jr := &Reader{r: r, buf: make([]byte, initialBuf), line: 1}
	if jr.ensure(3) && bytes.HasPrefix(jr.buf[jr.start:jr.end], []byte("\xef\xbb\xbf")) {
		jr.start += 3
		jr.off += 3
	}
	return jr
}

// Offset is the byte offset of the next unread byte.
func (r *Reader) Offset() int64 { return r.off }

// Line is the 1-based line of the next unread byte.
func (r *Reader) Line() int { return r.line }

// Err returns the read error that ended the input early, if any (not io.EOF).
func (r *Reader) Err() error { return r.readErr }

// fill reads more input, keeping buf[start:end]. It reports whether any
// bytes were added.
func (r *Reader) fill() bool {
	if r.eof {
		return false
	}
	if r.start > 0 {
		n := copy(r.buf, r.buf[r.start:r.end])
		r.start, r.end = 0, n
	}
	if len(r.buf)-r.end < minRead/4 {
		nb := make([]byte, max(2*len(r.buf), r.end+minRead))
		copy(nb, r.buf[:r.end])
		r.buf = nb
	}
	for range 100 {
		n, err := r.r.Read(r.buf[r.end:])
		r.end += n
		if err != nil {
			r.eof = true
			if err != io.EOF {
				r.readErr = err
			}
			return n > 0
		}
		if n > 0 {
			return true
		}
	}
	r.eof = true
	r.readErr = io.ErrNoProgress
	return false
}

// ensure makes at least n unread bytes available if the input has them.
func (r *Reader) ensure(n int) bool {
	for r.end-r.start < n {
		if !r.fill() {
			return false
		}
	}
	return true
}

func (r *Reader) advance(n int) {
	r.line += bytes.Count(r.buf[r.start:r.start+n], newline)
	r.start += n
	r.off += int64(n)
}

var newline = []byte{'\n'}

// Peek skips white space and returns the next byte without consuming it,
// or io.EOF at the end of the input.
func (r *Reader) Peek() (byte, error) {
	for {
		for r.start < r.end {
			switch c := r.buf[r.start]; c {
			case '\n':
				r.line++
				fallthrough
			case ' ', '\t', '\r':
				r.start++
				r.off++
			default:
				return c, nil
			}
		}
		if !r.fill() {
			if r.readErr != nil {
				return 0, r.readErr
			}
			return 0, io.EOF
		}
	}
}

// Consume skips white space and consumes the byte c, or returns an error
// naming what was found instead. End of input is ErrTruncated.
func (r *Reader) Consume(c byte, what string) error {
	got, err := r.Peek()
	if err == io.EOF {
		return ErrTruncated
	}
	if err != nil {
		return err
	}
	if got != c {
		return r.syntaxErr("expected %s, found %s", what, describe(got))
	}
	r.start++
	r.off++
	return nil
}

func (r *Reader) syntaxErr(format string, args ...any) *SyntaxError {
	return &SyntaxError{Msg: fmt.Sprintf(format, args...), Offset: r.off, Line: r.line}
}

// SyntaxErrorf returns a SyntaxError at the next unread byte.
func (r *Reader) SyntaxErrorf(format string, args ...any) *SyntaxError {
	return r.syntaxErr(format, args...)
}

func describe(c byte) string {
	switch {
	case c == '{':
		return "an object"
	case c == '[':
		return "an array"
	case c == '"':
		return "a string"
	case c == '-' || (c >= '0' && c <= '9'):
		return "a number"
	case c == 't' || c == 'f':
		return "a boolean"
	case c == 'n':
		return "null"
	case c >= 0x20 && c < 0x7f:
		return strconv.QuoteRune(rune(c))
	}
	return fmt.Sprintf("byte 0x%02x", c)
}

// Describe names the kind of JSON value that starts with c, for messages.
func Describe(c byte) string { return describe(c) }

// Value is one raw JSON value and where it starts in the input.
type Value struct {
	// Bytes is valid only until the next call on the Reader.
	Bytes  []byte
	Offset int64
	Line   int
}

// LineAt returns the line of the byte at offset i within v.Bytes.
func (v Value) LineAt(i int64) int {
	if i < 0 {
		i = 0
	}
	if i > int64(len(v.Bytes)) {
		i = int64(len(v.Bytes))
	}
	return v.Line + bytes.Count(v.Bytes[:i], newline)
}

// Next skips white space and consumes the next complete value. It returns
// io.EOF at a clean end of input and ErrTruncated if the input ends inside
// the value. Only nesting and strings are checked; decode Bytes to
// validate the rest.
func (r *Reader) Next() (Value, error) {
	c, err := r.Peek()
	if err != nil {
		return Value{}, err
	}
	var n int
	switch c {
	case '{', '[':
		n, err = r.scanComposite()
	case '"':
		n, err = r.scanString(0)
	case '}', ']', ',', ':':
		return Value{}, r.syntaxErr("expected a value, found %s", describe(c))
	default:
		n, err = r.scanScalar()
	}
	if err != nil {
		return Value{}, err
	}
	v := Value{Bytes: r.buf[r.start : r.start+n], Offset: r.off, Line: r.line}
	r.advance(n)
	return v, nil
}

// PeekKey returns the first key of the object that starts at the next
// unread byte, without consuming anything. ok is false if the next value is
// not an object with a string key within the first 64 KiB.
func (r *Reader) PeekKey() (key string, ok bool) {
	c, err := r.Peek()
	if err != nil || c != '{' {
		return "", false
	}
	for i := 1; ; i++ {
		if r.start+i >= r.end {
			if i > 64<<10 || !r.fill() {
				return "", false
			}
		}
		switch r.buf[r.start+i] {
		case ' ', '\t', '\r', '\n':
			continue
		case '"':
			// Find the closing quote by relative index: fill may move the
			// buffer but keeps buf[start:end] at the front.
			j := i + 1
			for {
				if r.start+j >= r.end {
					if j > 64<<10 || !r.fill() {
						return "", false
					}
					continue
				}
				c := r.buf[r.start+j]
				if c == '\\' {
					j += 2
					continue
				}
				if c == '"' {
					break
				}
				j++
			}
			return unquote(r.buf[r.start+i : r.start+j+1]), true
		default:
			return "", false
		}
	}
}

// ReadKey consumes an object key and its colon and returns the key.
func (r *Reader) ReadKey() (string, error) {
	c, err := r.Peek()
	if err == io.EOF {
		return "", ErrTruncated
	}
	if err != nil {
		return "", err
	}
	if c != '"' {
		return "", r.syntaxErr("expected an object key, found %s", describe(c))
	}
	v, err := r.Next()
	if err != nil {
		return "", err
	}
	key := unquote(v.Bytes)
	if err := r.Consume(':', "':' after object key"); err != nil {
		return "", err
	}
	return key, nil
}

// scanString returns the length of the string starting at buf[start+from].
func (r *Reader) scanString(from int) (int, error) {
	i := r.start + from + 1
	for {
		for i < r.end {
			j := quoteOrBackslash(r.buf[i:r.end])
			if j < 0 {
				i = r.end
				break
			}
			i += j
			if r.buf[i] == '"' {
				return i + 1 - r.start, nil
			}
			i += 2 // skip the escaped byte
		}
		rel := i - r.start
		if !r.fill() {
			return 0, r.truncated()
		}
		i = r.start + rel
	}
}

func (r *Reader) truncated() error {
	if r.readErr != nil {
		return r.readErr
	}
	return ErrTruncated
}

func (r *Reader) scanScalar() (int, error) {
	i := r.start
	for {
		for ; i < r.end; i++ {
			switch r.buf[i] {
			case ' ', '\t', '\r', '\n', ',', ']', '}', ':', '{', '[', '"':
				return i - r.start, nil
			}
		}
		rel := i - r.start
		if !r.fill() {
			if r.readErr != nil {
				return 0, r.readErr
			}
			return rel, nil
		}
		i = r.start + rel
	}
}

// scanComposite returns the length of the object or array at buf[start],
// matching brackets and skipping strings.
func (r *Reader) scanComposite() (int, error) {
	depth := 0
	i := r.start
	for {
		for i < r.end {
			switch r.buf[i] {
			case '"':
				// Find the end of the string within the buffer if we can.
				j := i + 1
				for {
					k := quoteOrBackslash(r.buf[j:r.end])
					if k < 0 {
						j = -1
						break
					}
					j += k
					if r.buf[j] == '"' {
						break
					}
					j += 2
					if j >= r.end {
						j = -1
						break
					}
				}
				if j < 0 {
					// The string continues beyond the buffer: scan it with refills.
					n, err := r.scanString(i - r.start)
					if err != nil {
						return 0, err
					}
					i = r.start + n
					continue
				}
				i = j + 1
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1 - r.start, nil
				}
			}
			i++
		}
		rel := i - r.start
		if !r.fill() {
			return 0, r.truncated()
		}
		i = r.start + rel
	}
}

// unquote decodes a JSON string token; a malformed one is returned raw
// (without its quotes) so messages can still show it.
func unquote(raw []byte) string {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return string(raw[1 : len(raw)-1])
	}
	return s
}

// DecodeError turns an error from decoding v with encoding/json into a
// message a user can act on and the line it points at. base is how many
// bytes the decoder had consumed before v (a reused json.Decoder counts
// offsets over its whole life); 0 for json.Unmarshal.
func DecodeError(v Value, err error, base int64) (line int, msg string) {
	if se, ok := errors.AsType[*json.SyntaxError](err); ok {
		// Offset counts the bytes read before the error, so the bad byte
		// is the one before it.
		at := max(se.Offset-base-1, 0)
		return v.LineAt(at), fmt.Sprintf("malformed JSON at byte offset %d: %s", v.Offset+at, se.Error())
	}
	if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		field := te.Field
		if field == "" {
			field = "record"
		}
		return v.Line, fmt.Sprintf("%s: expected %s, got %s", field, typeName(te.Type.Kind().String()), te.Value)
	}
	return v.Line, err.Error()
}

func typeName(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "map", "struct", "ptr", "pointer":
		return "an object"
	case "slice", "array":
		return "an array"
	case "bool":
		return "a boolean"
	case "int", "int64", "int32", "uint", "uint64", "float64", "float32":
		return "a number"
	case "interface":
		return "a value"
	}
	return kind
}

// quoteOrBackslash is bytes.IndexAny(b, `"\`) without building a set per call.
func quoteOrBackslash(b []byte) int {
	for i, c := range b {
		if c == '"' || c == '\\' {
			return i
		}
	}
	return -1
}
