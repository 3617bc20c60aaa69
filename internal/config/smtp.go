package config

import (
	"crypto/x509"
	"fmt"
	"net/mail"
	"os"
	"strings"
	"time"

	"github.com/stewardhq/steward"
	"github.com/stewardhq/steward/internal/secret"
)

// SMTP is the e-mail setup resolved by LoadSMTP.
type SMTP struct {
	Host     string
	Port     int
	TLS      string // starttls, tls or none
	Username string
	Password secret.String
	From     string
	// RootCAs is nil for the system's roots.
	RootCAs *x509.CertPool
	// The digest's weekday and hour in Location.
	DigestDay  time.Weekday
	DigestHour int
	Location   *time.Location
}

// SMTPEnabled reports whether e-mail notifications are configured.
func (c *Config) SMTPEnabled() bool { return c.SMTPHost != "" }

var weekdays = map[string]time.Weekday{"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday,
	"wednesday": time.Wednesday, "thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday}

// validateSMTP checks the e-mail settings, naming the variable at fault.
// The digest schedule is checked even without a server: preview uses it.
func (c *Config) validateSMTP() error {
	if _, ok := weekdays[strings.ToLower(c.DigestDay)]; !ok {
		return steward.Errorf(steward.CodeInvalid, "STEWARD_DIGEST_DAY %q is not a weekday such as monday", c.DigestDay)
	}
	if c.DigestHour < 0 || c.DigestHour > 23 {
		return steward.Errorf(steward.CodeInvalid, "STEWARD_DIGEST_HOUR %d is not an hour from 0 to 23", c.DigestHour)
	}
	if _, err := time.LoadLocation(c.DigestTimezone); err != nil || c.DigestTimezone == "" || c.DigestTimezone == "Local" {
		return steward.Errorf(steward.CodeInvalid, "STEWARD_DIGEST_TIMEZONE %q is not an IANA time zone such as Europe/Berlin", c.DigestTimezone)
	}
	if c.SMTPHost == "" {
		for _, kv := range [][2]string{{"STEWARD_SMTP_USERNAME", c.SMTPUsername}, {"STEWARD_SMTP_PASSWORD_FILE", c.SMTPPasswordFile},
			{"STEWARD_SMTP_FROM", c.SMTPFrom}, {"STEWARD_SMTP_CA_FILE", c.SMTPCAFile}} {
			if kv[1] != "" {
				return steward.Errorf(steward.CodeInvalid, "%s is set but STEWARD_SMTP_HOST is not: set the SMTP server to send e-mail", kv[0])
			}
		}
		return nil
	}
	switch c.SMTPTLS {
	case "starttls", "tls", "none":
	default:
		return steward.Errorf(steward.CodeInvalid, "STEWARD_SMTP_TLS %q is not one of starttls, tls, none", c.SMTPTLS)
	}
	if c.SMTPPort == 0 {
		c.SMTPPort = 587
		if c.SMTPTLS == "tls" {
			c.SMTPPort = 465
		}
	}
	if c.SMTPPort < 1 || c.SMTPPort > 65535 {
		return steward.Errorf(steward.CodeInvalid, "STEWARD_SMTP_PORT %d is not a port number", c.SMTPPort)
	}
	if strings.TrimSpace(c.SMTPFrom) == "" {
		return steward.Errorf(steward.CodeInvalid, "STEWARD_SMTP_FROM is required with STEWARD_SMTP_HOST: the sender address, e.g. \"Steward <steward@example.com>\"")
	}
	if _, err := mail.ParseAddress(c.SMTPFrom); err != nil {
		return steward.Errorf(steward.CodeInvalid, "STEWARD_SMTP_FROM %q is not an e-mail address such as \"Steward <steward@example.com>\"", c.SMTPFrom)
	}
	if (c.SMTPUsername == "") != (c.SMTPPasswordFile == "") {
		return steward.Errorf(steward.CodeInvalid, "SMTP authentication needs both STEWARD_SMTP_USERNAME and STEWARD_SMTP_PASSWORD_FILE")
	}
	if c.SMTPUsername != "" && c.SMTPTLS == "none" {
		return steward.Errorf(steward.CodeInvalid, "STEWARD_SMTP_TLS none with a username would send the password in clear text: use starttls or tls")
	}
	return nil
}

// LoadSMTP reads the password and CA files and returns the e-mail setup:
// always the digest schedule (previews use it), the server only when
// SMTPHost is set (Host "" otherwise). Call after Validate.
func (c *Config) LoadSMTP() (*SMTP, error) {
	loc, err := time.LoadLocation(c.DigestTimezone)
	if err != nil {
		return nil, steward.Errorf(steward.CodeInvalid, "STEWARD_DIGEST_TIMEZONE %q: %s", c.DigestTimezone, err.Error())
	}
	s := &SMTP{Host: c.SMTPHost, Port: c.SMTPPort, TLS: c.SMTPTLS, Username: c.SMTPUsername, From: strings.TrimSpace(c.SMTPFrom),
		DigestDay: weekdays[strings.ToLower(c.DigestDay)], DigestHour: c.DigestHour, Location: loc}
	if c.SMTPPasswordFile != "" {
		b, err := os.ReadFile(c.SMTPPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("read STEWARD_SMTP_PASSWORD_FILE: %w", err)
		}
		pw := strings.TrimRight(string(b), "\r\n")
		if pw == "" {
			return nil, steward.Errorf(steward.CodeInvalid, "STEWARD_SMTP_PASSWORD_FILE %s is empty", c.SMTPPasswordFile)
		}
		s.Password = secret.New(pw)
	}
	if c.SMTPCAFile != "" {
		pem, err := os.ReadFile(c.SMTPCAFile)
		if err != nil {
			return nil, fmt.Errorf("read STEWARD_SMTP_CA_FILE: %w", err)
		}
		s.RootCAs = x509.NewCertPool()
		if !s.RootCAs.AppendCertsFromPEM(pem) {
			return nil, steward.Errorf(steward.CodeInvalid, "STEWARD_SMTP_CA_FILE %s holds no PEM certificate", c.SMTPCAFile)
		}
	}
	return s, nil
}
