package notify

import (
	"fmt"
	"time"
)

// Schedule is when the weekly digests go out: a weekday and hour in a
// time zone. Each digest moment falls in exactly one ISO week, which
// names its period.
type Schedule struct {
	Weekday  time.Weekday
	Hour     int
	Location *time.Location
}

// DefaultSchedule is Monday 08:00 UTC.
func DefaultSchedule() Schedule { return Schedule{Weekday: time.Monday, Hour: 8, Location: time.UTC} }

func (s Schedule) loc() *time.Location {
	if s.Location == nil {
		return time.UTC
	}
	return s.Location
}

// Last returns the latest digest moment at or before now.
func (s Schedule) Last(now time.Time) time.Time {
	t := now.In(s.loc())
	back := (int(t.Weekday()) - int(s.Weekday) + 7) % 7
	at := s.on(t.Year(), t.Month(), t.Day()-back)
	if at.After(now) {
		at = s.on(t.Year(), t.Month(), t.Day()-back-7)
	}
	return at
}

// Next returns the first digest moment after now.
func (s Schedule) Next(now time.Time) time.Time {
	last := s.Last(now)
	return s.on(last.Year(), last.Month(), last.Day()+7)
}

// on is the digest hour of a day in the schedule's zone (time.Date
// normalizes the day and settles daylight saving gaps).
func (s Schedule) on(y int, m time.Month, d int) time.Time {
	return time.Date(y, m, d, s.Hour, 0, 0, 0, s.loc())
}

// Period names the ISO week of t in the schedule's zone, e.g. 2026-W48.
func (s Schedule) Period(t time.Time) string {
	y, w := t.In(s.loc()).ISOWeek()
	return fmt.Sprintf("%04d-W%02d", y, w)
}

func (s Schedule) String() string {
	return fmt.Sprintf("%s %02d:00 %s", s.Weekday, s.Hour, s.loc())
}
