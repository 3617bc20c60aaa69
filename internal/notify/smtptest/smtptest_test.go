package smtptest_test

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/require"

	"github.com/stewardhq/steward/internal/notify/smtptest"
)

const single = "From: a@example.com\r\nTo: b@example.com\r\nSubject: =?utf-8?b?SMOpbGxv?=\r\n" +
	"Message-ID: <x.1@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
	"SMOpbGxvCndvcmxk\r\n"

func send(addr string) error {
	return smtp.SendMail(addr, nil, "a@example.com", []string{"b@example.com"}, strings.NewReader(single))
}

func plainSend(t *testing.T, s *smtptest.Server) error {
	t.Helper()
	c, err := smtp.Dial(s.Addr())
	require.NoError(t, err)
	defer c.Close()
	return c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(single))
}

func TestRefuseNextAndParse(t *testing.T) {
	s := smtptest.Start(t)
	s.RefuseNext(2, "data", 451, "4.3.0", "Try later")
	for range 2 {
		err := plainSend(t, s)
		var se *smtp.SMTPError
		require.True(t, errors.As(err, &se), "%v", err)
		require.Equal(t, 451, se.Code)
		require.Equal(t, "Try later", se.Message)
	}
	require.NoError(t, plainSend(t, s))
	got := s.WaitMessages(t, 1)
	require.Len(t, got, 1)
	require.Equal(t, 3, s.Transactions())
	r := got[0]
	require.NoError(t, r.ParseErr)
	require.Equal(t, "Héllo", r.Subject)
	require.Equal(t, "Héllo\nworld", r.Text)
	require.Equal(t, "x.1@example.com", r.MessageID)
	require.Equal(t, "a@example.com", r.From)
	require.Equal(t, []string{"b@example.com"}, r.To)
	require.Equal(t, single, string(r.Raw))
}

func TestSTARTTLSAndCAFile(t *testing.T) {
	s := smtptest.Start(t, smtptest.WithSTARTTLS())
	b, err := os.ReadFile(s.WriteCAFile(t))
	require.NoError(t, err)
	block, _ := pem.Decode(b)
	require.NotNil(t, block)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(b))
	for _, name := range []string{"127.0.0.1", "localhost"} {
		c, err := smtp.DialStartTLS(s.Addr(), &tls.Config{RootCAs: pool, ServerName: name})
		require.NoError(t, err, name)
		require.NoError(t, c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(single)))
		require.NoError(t, c.Quit())
	}
	got := s.WaitMessages(t, 2)
	require.True(t, got[0].TLS)
	require.Empty(t, got[0].AuthUser)
	require.Error(t, send(s.Addr()), "the system's roots do not trust the kit's certificate")
}
