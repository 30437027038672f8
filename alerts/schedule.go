package alerts

import (
	"time"

	"github.com/hl7broker/hl7broker/config"
)

// scheduleOpen says whether a rule with schedule s watches at now, and
// since when the current stretch of its hours runs (zero without a
// schedule). A stretch past midnight (22:00 to 06:00) belongs to the day
// it began on; from equal to to is the whole day.
func scheduleOpen(s *config.Schedule, now time.Time) (bool, time.Time) {
	if s == nil {
		return true, time.Time{}
	}
	local := now.In(s.Zone)
	midnight := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, s.Zone)
	at := local.Hour()*60 + local.Minute()
	day := local.Weekday()
	minutes := func(m int) time.Duration { return time.Duration(m) * time.Minute }
	switch {
	case s.From == s.To:
		return s.Days[day], midnight
	case s.From < s.To:
		return s.Days[day] && at >= s.From && at < s.To, midnight.Add(minutes(s.From))
	case at >= s.From: // the evening part of an overnight stretch
		return s.Days[day], midnight.Add(minutes(s.From))
	case at < s.To: // the morning part: it began yesterday
		yesterday := time.Date(local.Year(), local.Month(), local.Day()-1, 0, 0, 0, 0, s.Zone)
		return s.Days[(day+6)%7], yesterday.Add(minutes(s.From))
	}
	return false, time.Time{}
}
