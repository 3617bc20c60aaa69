package notify_test

import (
	"bufio"
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/notify"
)

// parsed is a message read back with the standard library alone.
type parsed struct {
	header  mail.Header
	subject string
	parts   []part
}

type part struct {
	contentType, encoding, body string
}

func parseMessage(t *testing.T, raw []byte) parsed {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	require.NoError(t, err)
	subject, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
	require.NoError(t, err)
	typ, params, err := mime.ParseMediaType(m.Header.Get("Content-Type"))
	require.NoError(t, err)
	require.Equal(t, "multipart/alternative", typ)
	p := parsed{header: m.Header, subject: subject}
	mr := multipart.NewReader(m.Body, params["boundary"])
	for {
		rp, err := mr.NextRawPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		b, err := io.ReadAll(quotedprintable.NewReader(rp))
		require.NoError(t, err)
		p.parts = append(p.parts, part{rp.Header.Get("Content-Type"), rp.Header.Get("Content-Transfer-Encoding"),
			strings.ReplaceAll(string(b), "\r\n", "\n")})
	}
	return p
}

// checkLines requires CRLF line endings and lines of at most max bytes.
func checkLines(t *testing.T, raw []byte, max int) {
	t.Helper()
	require.True(t, bytes.HasSuffix(raw, []byte("\r\n")))
	for i, line := range bytes.Split(bytes.TrimSuffix(raw, []byte("\r\n")), []byte("\r\n")) {
		require.NotContains(t, string(line), "\r", "line %d", i+1)
		require.NotContains(t, string(line), "\n", "line %d", i+1)
		require.LessOrEqual(t, len(line), max, "line %d: %q", i+1, line)
	}
}

func TestMessageBytes(t *testing.T) {
	long := strings.Repeat("Überfällige Aufgabe für Ågot — ", 20) // one 600-byte line
	text := "Hello Zoë,\n\n" + long + "\n.a line starting with a dot\ntrailing spaces   \n= signs = and tabs\tend\n"
	html := "<p>Hello Zoë, <a href=\"https://steward.example.com/a?x=1&amp;y=2\">open</a></p>\n<p>" + long + "</p>\n"
	date := time.Date(2026, 3, 2, 9, 0, 0, 0, time.FixedZone("CET", 3600))
	msg := notify.Message{
		From:      "Steward <steward@example.com>",
		To:        []string{"Zoë Ämtli <zoe@example.com>", "bob@example.com"},
		Subject:   "Your weekly digest: 3 überfällige items",
		Text:      text,
		HTML:      html,
		MessageID: "steward.12.digest.2026-W10@example.com",
		Date:      date,
	}
	raw, err := msg.Bytes()
	require.NoError(t, err)
	checkLines(t, raw, 78)

	p := parseMessage(t, raw)
	from, err := p.header.AddressList("From")
	require.NoError(t, err)
	require.Equal(t, []*mail.Address{{Name: "Steward", Address: "steward@example.com"}}, from)
	to, err := p.header.AddressList("To")
	require.NoError(t, err)
	require.Equal(t, []*mail.Address{{Name: "Zoë Ämtli", Address: "zoe@example.com"}, {Address: "bob@example.com"}}, to)
	require.Equal(t, msg.Subject, p.subject)
	require.Contains(t, p.header.Get("Subject"), "=?utf-8?q?", "a non-ASCII subject is RFC 2047 encoded")
	gotDate, err := p.header.Date()
	require.NoError(t, err)
	require.True(t, date.Equal(gotDate), "date %s", gotDate)
	require.Equal(t, "<steward.12.digest.2026-W10@example.com>", p.header.Get("Message-ID"))
	require.Equal(t, "1.0", p.header.Get("MIME-Version"))

	require.Len(t, p.parts, 2)
	require.Equal(t, part{"text/plain; charset=utf-8", "quoted-printable", text}, p.parts[0])
	require.Equal(t, part{"text/html; charset=utf-8", "quoted-printable", html}, p.parts[1])
}

func TestMessageBytesDefaults(t *testing.T) {
	before := time.Now().Add(-time.Second)
	raw, err := notify.Message{From: "steward@mail.example.org", To: []string{"a@example.com"}, Subject: "Hi", Text: "t", HTML: "<p>h</p>"}.Bytes()
	require.NoError(t, err)
	p := parseMessage(t, raw)
	id := p.header.Get("Message-ID")
	require.True(t, strings.HasPrefix(id, "<") && strings.HasSuffix(id, "@mail.example.org>"), "message ID %q", id)
	d, err := p.header.Date()
	require.NoError(t, err)
	require.False(t, d.Before(before.Truncate(time.Second)), "date %s", d)

	raw2, err := notify.Message{From: "steward@mail.example.org", To: []string{"a@example.com"}}.Bytes()
	require.NoError(t, err)
	require.NotEqual(t, id, parseMessage(t, raw2).header.Get("Message-ID"), "message IDs are random")
}

// A subject carries names from outside Steward (a recommendation's): CR
// and LF in it must not start headers of their own, nor end the headers.
func TestMessageBytesSubjectInjection(t *testing.T) {
	for _, subject := range []string{
		"Overdue: Patch host\r\nBcc: evil@attacker.example\r\n\r\nInjected body",
		"Overdue: Patch host\nBcc: evil@attacker.example",
		"Überfällig: Patch host\r\nBcc: evil@attacker.example",
		"Overdue\rBcc: evil@attacker.example",
	} {
		t.Run(subject, func(t *testing.T) {
			raw, err := notify.Message{From: "steward@example.com", To: []string{"a@example.com"}, Subject: subject,
				Text: "real body", HTML: "<p>real body</p>"}.Bytes()
			require.NoError(t, err)
			checkLines(t, raw, 78)
			p := parseMessage(t, raw)
			keys := make([]string, 0, len(p.header))
			for k := range p.header {
				keys = append(keys, k)
			}
			require.ElementsMatch(t, []string{"From", "To", "Subject", "Date", "Message-Id", "Mime-Version", "Content-Type"}, keys)
			require.Empty(t, p.header.Get("Bcc"))
			require.NotContains(t, p.subject, "\r")
			require.NotContains(t, p.subject, "\n")
			require.Contains(t, p.subject, "Bcc: evil@attacker.example", "the text stays, as part of the subject")
			require.Len(t, p.parts, 2)
			require.Equal(t, "real body", p.parts[0].body)
		})
	}
}

func TestMessageBytesLongSubject(t *testing.T) {
	subject := strings.TrimSpace(strings.Repeat("Patch the frontend hosts in Zürich ", 6)) // 209 characters
	raw, err := notify.Message{From: "steward@example.com", To: []string{"a@example.com"}, Subject: subject}.Bytes()
	require.NoError(t, err)
	checkLines(t, raw, 78)
	require.Equal(t, subject, parseMessage(t, raw).subject)

	ascii := strings.TrimSpace(strings.Repeat("Patch the frontend hosts ", 8))
	raw, err = notify.Message{From: "steward@example.com", To: []string{"a@example.com"}, Subject: ascii}.Bytes()
	require.NoError(t, err)
	checkLines(t, raw, 78)
	require.Equal(t, ascii, parseMessage(t, raw).subject, "folding at spaces is undone by unfolding")

	huge := strings.Repeat("x", 5000)
	raw, err = notify.Message{From: "steward@example.com", To: []string{"a@example.com"}, Subject: huge}.Bytes()
	require.NoError(t, err)
	checkLines(t, raw, 998)
	got := parseMessage(t, raw).subject
	require.Equal(t, strings.Repeat("x", 249)+"…", got, "cut to 250 characters")
}

func TestMessageBytesRefuses(t *testing.T) {
	ok := notify.Message{From: "Steward <steward@example.com>", To: []string{"a@example.com"}, Subject: "s"}
	for _, tc := range []struct {
		title string
		edit  func(*notify.Message)
	}{
		{"no sender", func(m *notify.Message) { m.From = "" }},
		{"sender not an address", func(m *notify.Message) { m.From = "Steward" }},
		{"sender with a header", func(m *notify.Message) { m.From = "steward@example.com\r\nBcc: evil@attacker.example" }},
		{"no recipient", func(m *notify.Message) { m.To = nil }},
		{"recipient not an address", func(m *notify.Message) { m.To = []string{"a@example.com", "nobody"} }},
		{"recipient with a header", func(m *notify.Message) { m.To = []string{"a@example.com\r\nBcc: evil@attacker.example"} }},
		{"recipient name with a header", func(m *notify.Message) { m.To = []string{"\"A\r\nBcc: evil@attacker.example\" <a@example.com>"} }},
		{"message ID with a space", func(m *notify.Message) { m.MessageID = "a b@example.com" }},
		{"message ID with a header", func(m *notify.Message) { m.MessageID = "a@example.com>\r\nBcc: <evil@attacker.example" }},
		{"message ID without @", func(m *notify.Message) { m.MessageID = "abc" }},
	} {
		t.Run(tc.title, func(t *testing.T) {
			m := ok
			tc.edit(&m)
			raw, err := m.Bytes()
			require.Error(t, err, "%s", raw)
			require.Nil(t, raw)
		})
	}
	_, err := ok.Bytes()
	require.NoError(t, err)
}

// The headers end at the first empty line: nothing in a header value can
// make one.
func TestMessageBytesHeaderBlock(t *testing.T) {
	raw, err := notify.Message{From: "steward@example.com", To: []string{"a@example.com"}, Subject: "a\r\n\r\nb", Text: "x"}.Bytes()
	require.NoError(t, err)
	r := bufio.NewReader(bytes.NewReader(raw))
	n := 0
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		if line == "\r\n" {
			break
		}
		if line[0] != ' ' && line[0] != '\t' {
			n++ // not a folded continuation
		}
	}
	require.Equal(t, 7, n, "seven header fields")
}
