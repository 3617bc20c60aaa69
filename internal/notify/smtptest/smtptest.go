// Package smtptest runs a real SMTP server (github.com/emersion/go-smtp) on
// the loopback interface for tests: it keeps what it receives, parsed, and
// can be told to offer STARTTLS or speak implicit TLS, require AUTH PLAIN,
// refuse the next transactions, or hold a message's final answer so that a
// test can kill the sender, or drop the connection, while the sender waits
// for it.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// WaitTimeout bounds WaitMessages and Hold.Wait: a bound for a loaded
// machine (CI's race pass runs SQLite some 40 times slower), not a speed
// check.
const WaitTimeout = 60 * time.Second

// Option configures Start.
type Option func(*options)

type options struct {
	startTLS, implicitTLS bool
	user, pass            string
}

// WithSTARTTLS makes the server offer STARTTLS, with a self-signed
// certificate for 127.0.0.1, ::1 and localhost (see Server.CertPool).
func WithSTARTTLS() Option { return func(o *options) { o.startTLS = true } }

// WithImplicitTLS makes the server speak TLS from the first byte, with
// the same kind of certificate as WithSTARTTLS.
func WithImplicitTLS() Option { return func(o *options) { o.implicitTLS = true } }

// WithAuth requires AUTH PLAIN as user with pass before MAIL: MAIL without
// it is refused with 530, other credentials with 535. AUTH is offered only
// over TLS, so combine it with WithSTARTTLS or WithImplicitTLS.
func WithAuth(user, pass string) Option {
	return func(o *options) { o.user, o.pass = user, pass }
}

// Received is a message the server accepted (or held, see Hold).
type Received struct {
	// From and To are the envelope: MAIL FROM and each RCPT TO.
	From string
	To   []string
	// Raw is the content as received, CRLF line endings, dots unstuffed.
	Raw []byte
	// Header is Raw's header; Subject is decoded (RFC 2047); MessageID is
	// without angle brackets.
	Header    mail.Header
	Subject   string
	MessageID string
	// Text and HTML are the text/plain and text/html parts of a
	// multipart/alternative body (or a single-part body of that type),
	// decoded (quoted-printable, base64) with "\n" line endings.
	Text string
	HTML string
	// ParseErr is why Raw could not be parsed into the fields above.
	ParseErr error
	// TLS says the session was encrypted (STARTTLS or implicit TLS);
	// AuthUser is who authenticated, "" when no one did; Hello is the
	// name the client gave in EHLO or HELO.
	TLS      bool
	AuthUser string
	Hello    string
}

// Server is a running SMTP server. Its methods are safe for concurrent use.
type Server struct {
	t    testing.TB
	opts options
	srv  *smtp.Server
	addr *net.TCPAddr
	cert *x509.Certificate
	done chan struct{} // closed by cleanup

	logMu     sync.Mutex
	logClosed bool

	mu           sync.Mutex
	messages     []Received
	transactions int
	refusals     map[string]*refusal
	holds        []*Hold
	changed      chan struct{} // closed and replaced when messages grows
}

type refusal struct {
	n   int
	err *smtp.SMTPError
}

// Start runs a server on 127.0.0.1 on a free port until the test ends.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{t: t, done: make(chan struct{}), refusals: map[string]*refusal{}, changed: make(chan struct{})}
	for _, o := range opts {
		o(&s.opts)
	}
	srv := smtp.NewServer(&backend{s: s})
	srv.Domain = "smtptest.localhost"
	srv.ErrorLog = testLogger{s}
	srv.ReadTimeout = time.Minute
	srv.WriteTimeout = time.Minute
	var tlsConfig *tls.Config
	if s.opts.startTLS || s.opts.implicitTLS {
		cert, key, err := selfSigned()
		if err != nil {
			t.Fatalf("smtptest: make a certificate: %v", err)
		}
		s.cert = cert
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}}}
	}
	if s.opts.startTLS {
		srv.TLSConfig = tlsConfig
	}
	var l net.Listener
	var err error
	if s.opts.implicitTLS {
		l, err = tls.Listen("tcp", "127.0.0.1:0", tlsConfig)
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatalf("smtptest: listen: %v", err)
	}
	s.addr = l.Addr().(*net.TCPAddr)
	s.srv = srv
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		close(s.done) // releases held messages
		_ = srv.Close()
		// Serve may not have registered l with srv yet (a test that ends
		// at once), and then srv.Close leaves it open.
		_ = l.Close()
		<-served
		s.logMu.Lock()
		s.logClosed = true
		s.logMu.Unlock()
	})
	return s
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return s.addr.String() }

// Host is the server's IP address, 127.0.0.1.
func (s *Server) Host() string { return s.addr.IP.String() }

// Port is the server's port.
func (s *Server) Port() int { return s.addr.Port }

// CertPool is a pool that trusts the server's certificate; nil without
// TLS.
func (s *Server) CertPool() *x509.CertPool {
	if s.cert == nil {
		return nil
	}
	p := x509.NewCertPool()
	p.AddCert(s.cert)
	return p
}

// WriteCAFile writes the server's certificate as PEM to a file in t's
// temporary directory and returns its path, for a subprocess to trust.
func (s *Server) WriteCAFile(t testing.TB) string {
	t.Helper()
	if s.cert == nil {
		t.Fatal("smtptest: WriteCAFile on a server without TLS")
	}
	path := filepath.Join(t.TempDir(), "smtptest-ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.cert.Raw}), 0o600); err != nil {
		t.Fatalf("smtptest: write CA file: %v", err)
	}
	return path
}

// RefuseNext makes the next n transactions fail at step — "mail" (MAIL
// FROM), "rcpt" (every RCPT TO of the transaction) or "data" (the answer
// to the final "." of DATA, after the content was read) — with the reply
// code, enhanced code (e.g. "4.2.0"; "" for the server's default X.0.0)
// and text. Refusals at different steps count down separately.
func (s *Server) RefuseNext(n int, step string, code int, enhanced string, msg string) {
	s.t.Helper()
	switch step {
	case "mail", "rcpt", "data":
	default:
		s.t.Fatalf("smtptest: RefuseNext step %q is not mail, rcpt or data", step)
	}
	ec := smtp.EnhancedCodeNotSet
	if enhanced != "" {
		parts := strings.Split(enhanced, ".")
		if len(parts) != 3 {
			s.t.Fatalf("smtptest: enhanced code %q is not like 4.2.0", enhanced)
		}
		for i, p := range parts {
			v, err := strconv.Atoi(p)
			if err != nil {
				s.t.Fatalf("smtptest: enhanced code %q is not like 4.2.0", enhanced)
			}
			ec[i] = v
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refusals[step] = &refusal{n: n, err: &smtp.SMTPError{Code: code, EnhancedCode: ec, Message: msg}}
}

// takeRefusal returns the refusal for step and counts it, or nil.
func (s *Server) takeRefusal(step string) *smtp.SMTPError {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.refusals[step]
	if r == nil || r.n <= 0 {
		return nil
	}
	r.n--
	return r.err
}

// Messages are the messages accepted so far, in order.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.messages...)
}

// WaitMessages waits until at least n messages were accepted and returns
// them all; after WaitTimeout it fails t, saying what was received.
func (s *Server) WaitMessages(t testing.TB, n int) []Received {
	t.Helper()
	deadline := time.NewTimer(WaitTimeout)
	defer deadline.Stop()
	for {
		s.mu.Lock()
		msgs, changed, tx := append([]Received(nil), s.messages...), s.changed, s.transactions
		s.mu.Unlock()
		if len(msgs) >= n {
			return msgs
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("smtptest: waited %s for %d messages; received %d in %d DATA transactions: %s", WaitTimeout, n, len(msgs), tx, describe(msgs))
			return nil
		}
	}
}

func describe(msgs []Received) string {
	if len(msgs) == 0 {
		return "none"
	}
	var b strings.Builder
	for i, m := range msgs {
		if i > 0 {
			b.WriteString("; ")
		}
		fmt.Fprintf(&b, "%s -> %v %q", m.From, m.To, m.Subject)
	}
	return b.String()
}

// Transactions counts DATA commands the server answered with 354: every
// attempt to hand over content, whether it was then accepted, refused,
// abandoned by the client before the final "." or dropped.
func (s *Server) Transactions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transactions
}

// Hold is the next transaction's final answer, held back: see HoldData.
type Hold struct {
	s        *Server
	received chan Received
	decided  chan bool // true: answer; false: drop
	once     sync.Once
}

// HoldData holds back the answer to the next transaction's final "."
// (holds queue up, one per transaction). The server reads the whole
// content, then waits: Wait returns the message once it is received and
// unanswered; then Answer lets the server answer as it otherwise would
// (250, keeping the message in Messages, or a refusal set with
// RefuseNext), or Drop closes the connection without an answer and without
// keeping the message. A sender killed meanwhile and then Answer is a
// message delivered that its sender never heard of. A hold not decided
// when the test ends is dropped. A transaction the client abandons before
// its final "." does not use the hold.
func (s *Server) HoldData() *Hold {
	h := &Hold{s: s, received: make(chan Received, 1), decided: make(chan bool, 1)}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holds = append(s.holds, h)
	return h
}

// Wait waits until the held message has been fully received and returns
// it; after WaitTimeout it fails t.
func (h *Hold) Wait(t testing.TB) Received {
	t.Helper()
	select {
	case r := <-h.received:
		h.received <- r // a second Wait returns it too
		return r
	case <-time.After(WaitTimeout):
		t.Fatalf("smtptest: waited %s for a held message; %d DATA transactions so far", WaitTimeout, h.s.Transactions())
		return Received{}
	}
}

// Answer lets the server answer the held message as it otherwise would.
func (h *Hold) Answer() { h.once.Do(func() { h.decided <- true }) }

// Drop closes the connection of the held message without answering it.
func (h *Hold) Drop() { h.once.Do(func() { h.decided <- false }) }

// takeHold returns the next hold, or nil.
func (s *Server) takeHold() *Hold {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.holds) == 0 {
		return nil
	}
	h := s.holds[0]
	s.holds = s.holds[1:]
	return h
}

func (s *Server) keep(r Received) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.messages = append(s.messages, r)
	close(s.changed)
	s.changed = make(chan struct{})
}

type backend struct{ s *Server }

func (b *backend) NewSession(c *smtp.Conn) (smtp.Session, error) {
	_, isTLS := c.TLSConnectionState()
	return &session{s: b.s, conn: c, tls: isTLS}, nil
}

// session is one connection's state; STARTTLS starts a new one.
type session struct {
	s    *Server
	conn *smtp.Conn
	tls  bool
	user string

	from         string
	to           []string
	rcptRefusing *smtp.SMTPError // this transaction's RCPT refusal
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if ss.s.opts.user == "" || mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if (identity != "" && identity != username) || username != ss.s.opts.user || password != ss.s.opts.pass {
			return smtp.ErrAuthFailed
		}
		ss.user = username
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.user != "" && ss.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	}
	if err := ss.s.takeRefusal("mail"); err != nil {
		return err
	}
	ss.from = from
	ss.rcptRefusing = nil
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.rcptRefusing == nil && len(ss.to) == 0 {
		ss.rcptRefusing = ss.s.takeRefusal("rcpt")
	}
	if ss.rcptRefusing != nil {
		return ss.rcptRefusing
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	ss.s.mu.Lock()
	ss.s.transactions++
	ss.s.mu.Unlock()
	raw, err := io.ReadAll(r)
	if err != nil {
		return err // the client went away before the final "."
	}
	msg := parse(raw)
	msg.From, msg.To, msg.TLS, msg.AuthUser, msg.Hello = ss.from, append([]string(nil), ss.to...), ss.tls, ss.user, ss.conn.Hostname()
	if h := ss.s.takeHold(); h != nil {
		h.received <- msg
		answer := false
		select {
		case answer = <-h.decided:
		case <-ss.s.done:
		}
		if !answer {
			_ = ss.conn.Conn().Close()
			return errors.New("dropped without an answer")
		}
	}
	if err := ss.s.takeRefusal("data"); err != nil {
		return err
	}
	ss.s.keep(msg)
	return nil
}

func (ss *session) Reset() {
	ss.from, ss.to, ss.rcptRefusing = "", nil, nil
}

func (ss *session) Logout() error { return nil }

// parse fills a Received's content fields from raw.
func parse(raw []byte) Received {
	r := Received{Raw: raw}
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		r.ParseErr = fmt.Errorf("read message: %w", err)
		return r
	}
	r.Header = m.Header
	dec := new(mime.WordDecoder)
	if r.Subject, err = dec.DecodeHeader(m.Header.Get("Subject")); err != nil {
		r.ParseErr = fmt.Errorf("decode subject: %w", err)
	}
	r.MessageID = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(m.Header.Get("Message-ID")), "<"), ">")
	if err := r.readBody(m.Header.Get("Content-Type"), m.Header.Get("Content-Transfer-Encoding"), m.Body); err != nil && r.ParseErr == nil {
		r.ParseErr = err
	}
	return r
}

// readBody sets Text or HTML from a body of contentType, descending into
// multipart/alternative.
func (r *Received) readBody(contentType, encoding string, body io.Reader) error {
	if contentType == "" {
		contentType = "text/plain"
	}
	typ, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type %q: %w", contentType, err)
	}
	if strings.HasPrefix(typ, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			// NextRawPart: NextPart would decode quoted-printable itself
			// and drop the header saying so.
			p, err := mr.NextRawPart()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("multipart body: %w", err)
			}
			if err := r.readBody(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, body) // ignores line breaks
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return fmt.Errorf("%s part: %w", typ, err)
	}
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	switch typ {
	case "text/plain":
		r.Text = text
	case "text/html":
		r.HTML = text
	}
	return nil
}

// selfSigned makes a certificate for the loopback addresses, valid for a
// day, that is its own CA.
func selfSigned() (*x509.Certificate, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}

// testLogger sends the server's errors to the test's log until the
// server is closed (t.Log after the test ended panics).
type testLogger struct{ s *Server }

func (l testLogger) Printf(format string, v ...any) { l.log(fmt.Sprintf(format, v...)) }
func (l testLogger) Println(v ...any)               { l.log(fmt.Sprint(v...)) }

func (l testLogger) log(msg string) {
	l.s.logMu.Lock()
	defer l.s.logMu.Unlock()
	if !l.s.logClosed {
		l.s.t.Logf("smtptest: %s", msg)
	}
}
