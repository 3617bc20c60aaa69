package notify

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"net/textproto"
	"strings"
	"time"
	"unicode/utf8"
)

// maxSubjectRunes bounds a subject: it is made from names Steward does not
// control (a recommendation's), and a longer one is unreadable anyway. It
// also keeps every header line well under RFC 5322's 998 characters.
const maxSubjectRunes = 250

// Bytes is the message as sent (RFC 5322, CRLF line endings): the headers,
// then a multipart/alternative body with the text part first and the HTML
// part second, both UTF-8 and quoted-printable. From and every To must be
// addresses. The subject is made safe rather than refused, because it
// carries names from outside Steward: control characters (CR and LF
// above all, which would start a header of their own) become spaces, a
// subject of more than 250 characters is cut, and a non-ASCII one is
// RFC 2047 encoded. An empty MessageID gets a random one in From's domain;
// a zero Date is now.
func (m Message) Bytes() ([]byte, error) {
	from, err := mail.ParseAddress(m.From)
	if err != nil {
		return nil, fmt.Errorf("message sender %q: %w", m.From, err)
	}
	if len(m.To) == 0 {
		return nil, errors.New("message has no recipient")
	}
	to := make([]string, 0, len(m.To))
	for _, t := range m.To {
		a, err := mail.ParseAddress(t)
		if err != nil {
			return nil, fmt.Errorf("message recipient %q: %w", t, err)
		}
		to = append(to, a.String())
	}
	id := m.MessageID
	if id == "" {
		id = newMessageID(m.From)
	}
	if err := validMessageID(id); err != nil {
		return nil, err
	}
	date := m.Date
	if date.IsZero() {
		date = time.Now()
	}

	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	for _, p := range []struct{ typ, content string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{
			"Content-Type":              {p.typ + "; charset=utf-8"},
			"Content-Transfer-Encoding": {"quoted-printable"},
		})
		if err != nil {
			return nil, fmt.Errorf("message %s part: %w", p.typ, err)
		}
		qp := quotedprintable.NewWriter(pw)
		if _, err := qp.Write([]byte(p.content)); err != nil {
			return nil, fmt.Errorf("message %s part: %w", p.typ, err)
		}
		if err := qp.Close(); err != nil {
			return nil, fmt.Errorf("message %s part: %w", p.typ, err)
		}
	}
	if err := mw.Close(); err != nil {
		return nil, fmt.Errorf("message body: %w", err)
	}

	var b bytes.Buffer
	writeHeader(&b, "From", from.String())
	writeHeader(&b, "To", strings.Join(to, ", "))
	writeHeader(&b, "Subject", encodeSubject(m.Subject))
	writeHeader(&b, "Date", date.Format(time.RFC1123Z))
	writeHeader(&b, "Message-ID", "<"+id+">")
	writeHeader(&b, "MIME-Version", "1.0")
	writeHeader(&b, "Content-Type", mime.FormatMediaType("multipart/alternative", map[string]string{"boundary": mw.Boundary()}))
	b.WriteString("\r\n")
	b.Write(body.Bytes())
	return b.Bytes(), nil
}

// encodeSubject makes a subject safe for its header line: see Bytes.
func encodeSubject(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == utf8.RuneError {
			return ' '
		}
		return r
	}, s)
	if utf8.RuneCountInString(s) > maxSubjectRunes {
		s = string([]rune(s)[:maxSubjectRunes-1]) + "…"
	}
	// Encodes only when needed (non-ASCII), in encoded-words of at most 75
	// characters separated by spaces, where writeHeader may fold.
	return mime.QEncoding.Encode("utf-8", s)
}

// writeHeader writes one header field, folded before spaces so that lines
// stay within 78 characters where the value allows it (an encoded-word
// has up to 75, so a long subject starts on the next line). value must
// have no CR or LF: every caller builds it from parsed or sanitised parts.
func writeHeader(b *bytes.Buffer, name, value string) {
	const limit = 78
	b.WriteString(name + ":")
	line, content := len(name)+1, true // content: the line is more than its folding space
	for _, word := range strings.Split(value, " ") {
		if content && line+1+len(word) > limit {
			b.WriteString("\r\n")
			line, content = 0, false
		}
		b.WriteString(" " + word)
		line += 1 + len(word)
		content = content || word != ""
	}
	b.WriteString("\r\n")
}

// validMessageID checks a Message-ID (without angle brackets) is one
// token: printable ASCII with no space or angle bracket, and an @.
func validMessageID(id string) error {
	for _, r := range id {
		if r <= ' ' || r > '~' || r == '<' || r == '>' {
			return fmt.Errorf("message ID %q: only printable ASCII without spaces or angle brackets", id)
		}
	}
	if !strings.Contains(id, "@") {
		return fmt.Errorf("message ID %q has no @", id)
	}
	return nil
}

// newMessageID is a random Message-ID in the domain of from's address.
func newMessageID(from string) string {
	return "steward." + strings.ToLower(rand.Text()) + "@" + addressDomain(from)
}

// addressDomain is the domain of from's address, or steward.invalid.
func addressDomain(from string) string {
	if a, err := mail.ParseAddress(from); err == nil {
		if _, d, ok := strings.Cut(a.Address, "@"); ok && d != "" {
			return d
		}
	}
	return "steward.invalid"
}
