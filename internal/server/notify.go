package server

import (
	"github.com/stewardhq/steward/internal/config"
	"github.com/stewardhq/steward/internal/notify"
)

// notifyConfig maps the e-mail settings onto the notification service's
// (smtp nil: e-mail off) and the options tests set.
func notifyConfig(cfg config.Config, smtp *config.SMTP, o options) notify.Config {
	nc := notify.Config{PublicURL: cfg.PublicURL, RetryBackoff: o.notifyRetry, Now: o.notifyClock, Schedule: notify.DefaultSchedule()}
	if smtp == nil {
		return nc
	}
	nc.Schedule = notify.Schedule{Weekday: smtp.DigestDay, Hour: smtp.DigestHour, Location: smtp.Location}
	if smtp.Host != "" {
		nc.SMTP = &notify.SMTPConfig{Host: smtp.Host, Port: smtp.Port, TLS: notify.TLSMode(smtp.TLS), Username: smtp.Username,
			Password: smtp.Password, From: smtp.From, RootCAs: smtp.RootCAs}
	}
	return nc
}
