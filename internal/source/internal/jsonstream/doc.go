package jsonstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/stewardhq/steward"
)

// Doc walks one JSON document made of numbered records (results, checks,
// findings) on a Reader. It exists so that the file-format parsers share
// one way to step through objects and arrays and one wording for bad
// input: every error it returns is a steward.InvalidRecord naming the
// record being read (N+1) and a line, which users and tests rely on.
type Doc struct {
	R *Reader
	// N is the number of records read so far; the parser counts them.
	// Errors name record N+1, the one being read.
	N int
	// WrapReadErrors makes Fail return an error of the input's own reader
	// as "read input after record N: <err>", saying where reading
	// stopped; without it such an error is returned as it is.
	WrapReadErrors bool
}

// NewDoc returns a Doc reading r.
func NewDoc(r io.Reader) *Doc { return &Doc{R: NewReader(r)} }

// Fail turns an error from the Reader into the one a parser returns: the
// end of the input inside the document (io.EOF or ErrTruncated) and a
// SyntaxError become a steward.InvalidRecord naming record N+1. Any other
// error is the input's own read error, not the document's fault: it is
// wrapped if WrapReadErrors is set, else returned as it is (a
// *steward.Error, say from a reader of an API, always is).
func (d *Doc) Fail(err error) error {
	if _, ok := errors.AsType[*steward.Error](err); ok && !d.WrapReadErrors {
		return err
	}
	if err == io.EOF || errors.Is(err, ErrTruncated) {
		return steward.InvalidRecord(d.N+1, d.R.Line(), fmt.Errorf("unexpected end of input after record %d", d.N))
	}
	if se, ok := errors.AsType[*SyntaxError](err); ok {
		return steward.InvalidRecord(d.N+1, se.Line, fmt.Errorf("malformed JSON at byte offset %d: %s", se.Offset, se.Msg))
	}
	if d.WrapReadErrors {
		return fmt.Errorf("read input after record %d: %w", d.N, err)
	}
	return err
}

// Invalid reports a problem with the document at line, naming record N+1.
func (d *Doc) Invalid(line int, format string, args ...any) error {
	return steward.InvalidRecord(d.N+1, line, fmt.Errorf(format, args...))
}

// Peek is Reader.Peek inside the document, where more input must follow:
// the end of the input is ErrTruncated rather than io.EOF.
func (d *Doc) Peek() (byte, error) {
	c, err := d.R.Peek()
	if err == io.EOF {
		return 0, ErrTruncated
	}
	return c, err
}

// Object reads an object, calling each with every key; each must consume
// the value (Skip if it does not want it). what names the object in
// messages.
func (d *Doc) Object(what string, each func(key string) error) error {
	c, err := d.Peek()
	if err != nil {
		return d.Fail(err)
	}
	if c != '{' {
		return d.Invalid(d.R.Line(), "%s: expected an object, found %s", what, Describe(c))
	}
	return d.Fields("',' or '}' in "+what, each)
}

// Fields is Object for an object the caller already knows is next (or
// wants a syntax error for if not), with sep the message for a field
// followed by neither ',' nor '}' ("',' or '}' after a document field").
func (d *Doc) Fields(sep string, each func(key string) error) error {
	if err := d.R.Consume('{', "'{'"); err != nil {
		return d.Fail(err)
	}
	return d.items('}', sep, func(int) error {
		key, err := d.R.ReadKey()
		if err != nil {
			return d.Fail(err)
		}
		return each(key)
	})
}

// Array reads an array (or null, which is empty), calling each for every
// element with its index; each must consume the element. what names the
// array in messages.
func (d *Doc) Array(what string, each func(i int) error) error {
	c, err := d.Peek()
	if err != nil {
		return d.Fail(err)
	}
	if c == 'n' {
		return d.Skip()
	}
	if c != '[' {
		return d.Invalid(d.R.Line(), "%s: expected an array, found %s", what, Describe(c))
	}
	_ = d.R.Consume('[', "'['")
	return d.items(']', "',' or ']' in "+what, each)
}

// items reads the items of an object or array whose opening bracket is
// consumed, up to and including close, calling each for every item; sep
// is the message for an item followed by neither ',' nor close.
func (d *Doc) items(close byte, sep string, each func(i int) error) error {
	c, err := d.Peek()
	if err != nil {
		return d.Fail(err)
	}
	if c == close {
		_ = d.R.Consume(close, "")
		return nil
	}
	for i := 0; ; i++ {
		if err := each(i); err != nil {
			return err
		}
		if c, err = d.Peek(); err != nil {
			return d.Fail(err)
		}
		if c == close {
			_ = d.R.Consume(close, "")
			return nil
		}
		if err := d.R.Consume(',', sep); err != nil {
			return d.Fail(err)
		}
	}
}

// Skip consumes the next value unread.
func (d *Doc) Skip() error {
	if _, err := d.R.Next(); err != nil {
		return d.Fail(err)
	}
	return nil
}

// Decode reads the next value into v with encoding/json; what names it in
// messages.
func (d *Doc) Decode(what string, v any) error {
	val, err := d.R.Next()
	if err != nil {
		return d.Fail(err)
	}
	if err := json.Unmarshal(val.Bytes, v); err != nil {
		line, msg := DecodeError(val, err, 0)
		return d.Invalid(line, "%s: %s", what, msg)
	}
	return nil
}

// End checks that nothing but white space follows the document, what
// naming it in the message ("unexpected ... after the end of the <what>").
func (d *Doc) End(what string) error {
	c, err := d.R.Peek()
	if err == io.EOF {
		return nil
	}
	if err != nil {
		return d.Fail(err)
	}
	return d.Invalid(d.R.Line(), "unexpected %s after the end of the %s", Describe(c), what)
}

// Start peeks at the first byte of the document. Empty input is an error
// saying what was wanted ("input is empty (want <want>)"), since a file
// with no document at all is more likely the wrong file than a bad one.
func (d *Doc) Start(want string) (byte, error) {
	c, err := d.R.Peek()
	if err == io.EOF {
		return 0, steward.Errorf(steward.CodeInvalid, "input is empty (want %s)", want)
	}
	if err != nil {
		return 0, d.Fail(err)
	}
	return c, nil
}

// Elements reads an array of records, calling each with every element's
// raw value; unlike Array, null is not an empty array here. open is what
// the '[' is called if something else is found ("'[' after \"findings\""),
// after names an element in "',' or ']' after <after>".
func (d *Doc) Elements(open, after string, each func(v Value) error) error {
	if err := d.R.Consume('[', open); err != nil {
		return d.Fail(err)
	}
	return d.items(']', "',' or ']' after "+after, func(int) error {
		v, err := d.R.Next()
		if err != nil {
			return d.Fail(err)
		}
		return each(v)
	})
}

// Lines reads JSON Lines (or any sequence of values) to the end of the
// input, calling each with every value.
func (d *Doc) Lines(each func(v Value) error) error {
	for {
		v, err := d.R.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return d.Fail(err)
		}
		if err := each(v); err != nil {
			return err
		}
	}
}

// Record starts the next record, v: it counts it (N), checks ctx every
// 1024 records so a huge file can be cancelled, and checks that v is an
// object, what naming it in the message ("expected <what>, found ...").
func (d *Doc) Record(ctx context.Context, v Value, what string) error {
	d.N++
	if d.N%1024 == 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	if v.Bytes[0] != '{' {
		return steward.InvalidRecord(d.N, v.Line, fmt.Errorf("expected %s, found %s", what, Describe(v.Bytes[0])))
	}
	return nil
}

// UnmarshalRecord decodes v, record n, into x with encoding/json; an error
// names the record and the line at fault.
func UnmarshalRecord(n int, v Value, x any) error {
	if err := json.Unmarshal(v.Bytes, x); err != nil {
		line, msg := DecodeError(v, err, 0)
		return steward.InvalidRecord(n, line, errors.New(msg))
	}
	return nil
}

// FirstKey returns the first key of the JSON object that b (a file's head,
// starting at its '{') starts with, or "" when it cannot tell: format
// detection looks no further.
func FirstKey(b []byte) string {
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
