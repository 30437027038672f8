package alerts

import (
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hl7broker/hl7broker/config"
)

// Rule is one alert rule, as config checked it.
type Rule struct {
	Name, Kind, Target, Severity string
	For, Window, Repeat          time.Duration
	Threshold                    float64 // oldest: seconds; disk_free: bytes or percent
	Percent                      bool
	Days                         int
	Schedule                     *config.Schedule // nil: always
	Notify                       []string
}

// RulesOf are a config's rules.
func RulesOf(a config.AlertsConfig) []Rule {
	var out []Rule
	for _, r := range a.Rules {
		th, pct := r.ThresholdValue()
		out = append(out, Rule{Name: r.Name, Kind: r.Kind, Target: r.Target, Severity: r.Severity, For: r.For, Window: r.Window,
			Repeat: r.Repeat, Threshold: th, Percent: pct, Days: r.Days, Schedule: r.ParsedSchedule(), Notify: r.Notify})
	}
	return out
}

// finding is a rule's condition for one target at one evaluation.
type finding struct {
	target string
	active bool
	// hold is how long the condition must hold before the rule fires
	// (the rule's for; 0 where for is already in the condition).
	hold   time.Duration
	detail string // names, counts and durations only
}

// counters remembers counters' values over time, for increases within
// a window.
type counters map[string][]sample

type sample struct {
	at time.Time
	v  float64
}

// add records key's value at now and forgets what is older than keep.
func (c counters) add(key string, now time.Time, v float64, keep time.Duration) {
	s := append(c[key], sample{now, v})
	i := 0
	for i < len(s)-1 && now.Sub(s[i].at) > keep {
		i++
	}
	c[key] = s[i:]
}

// increase is how much key grew within window before now; a counter that
// went down (a restart) counts from zero again.
func (c counters) increase(key string, now time.Time, window time.Duration) float64 {
	var sum float64
	s := c[key]
	for i := 1; i < len(s); i++ {
		if now.Sub(s[i-1].at) > window {
			continue
		}
		if d := s[i].v - s[i-1].v; d > 0 {
			sum += d
		} else if d < 0 {
			sum += s[i].v
		}
	}
	return sum
}

// evaluate is rule r's findings on f, one per target it watches.
func (r Rule) evaluate(f Facts, seen counters) []finding {
	now := f.Now
	switch r.Kind {
	case "silent", "nak_rate":
		var out []finding
		for _, name := range r.targets(slices.Sorted(maps.Keys(f.Sources))) {
			s := f.Sources[name]
			if r.Kind == "nak_rate" {
				n := seen.increase("nak:"+name, now, r.Window)
				perMin := n / r.Window.Minutes()
				out = append(out, finding{target: name, active: perMin >= r.Threshold, hold: r.For,
					detail: fmt.Sprintf("%.0f negative ACKs in the last %s (%.1f a minute)", n, duration(r.Window), perMin)})
				continue
			}
			open, opened := scheduleOpen(r.Schedule, now)
			if !open {
				out = append(out, finding{target: name, detail: "outside the rule's schedule"})
				continue
			}
			from := latest(s.LastMessage, f.Started, opened)
			quiet := now.Sub(from)
			detail := fmt.Sprintf("no message for %s", duration(quiet))
			if s.LastMessage.IsZero() {
				detail = fmt.Sprintf("no message since the broker started %s ago", duration(now.Sub(f.Started)))
			}
			out = append(out, finding{target: name, active: quiet >= r.For, detail: detail})
		}
		return out
	case "failing", "paused", "oldest", "queue", "dead_letters":
		var out []finding
		for _, name := range r.targets(slices.Sorted(maps.Keys(f.Destinations))) {
			out = append(out, r.destination(name, f.Destinations[name], now, seen))
		}
		return out
	case "storage":
		return []finding{{active: f.StorageProblem != "", hold: r.For, detail: f.StorageProblem}}
	case "disk_free":
		if f.DiskTotal == 0 {
			return nil
		}
		free, limit := float64(f.DiskFree), r.Threshold
		if r.Percent {
			free = 100 * float64(f.DiskFree) / float64(f.DiskTotal)
		}
		return []finding{{active: free < limit, hold: r.For,
			detail: fmt.Sprintf("%s free of %s (%.0f%%)", size(f.DiskFree), size(f.DiskTotal), 100*float64(f.DiskFree)/float64(f.DiskTotal))}}
	case "certificate":
		var out []finding
		for _, c := range f.Certificates {
			if r.Target != "" && c.Name != r.Target {
				continue
			}
			left := c.NotAfter.Sub(now)
			detail := fmt.Sprintf("the certificate of %s expires in %s (%s)", c.Where(), duration(left), c.NotAfter.UTC().Format(time.DateOnly))
			if left <= 0 {
				detail = fmt.Sprintf("the certificate of %s expired %s ago", c.Where(), duration(-left))
			}
			out = append(out, finding{target: c.Where(), active: left <= time.Duration(r.Days)*24*time.Hour, detail: detail})
		}
		return out
	case "router":
		return []finding{{active: f.UnroutedAge >= max(r.For, 30*time.Second),
			detail: fmt.Sprintf("the oldest stored message has waited %s for the router", duration(f.UnroutedAge))}}
	}
	return nil
}

func (r Rule) destination(name string, d DestinationFacts, now time.Time, seen counters) finding {
	f := finding{target: name, hold: r.For}
	switch r.Kind {
	case "failing":
		f.active = d.LastFailure.After(d.LastSuccess) && d.QueueDepth != 0
		f.detail = fmt.Sprintf("every attempt has failed since the last delivery; %d waiting", max(d.QueueDepth, 0))
		if d.LastSuccess.IsZero() {
			f.detail = fmt.Sprintf("no delivery since the broker started; %d waiting", max(d.QueueDepth, 0))
		}
	case "paused":
		f.active, f.detail = d.Paused, fmt.Sprintf("paused; %d waiting", max(d.QueueDepth, 0))
	case "oldest":
		f.active = d.OldestAge.Seconds() >= r.Threshold
		f.detail = fmt.Sprintf("the oldest waiting message is %s old; %d waiting", duration(d.OldestAge), max(d.QueueDepth, 0))
	case "queue":
		f.active = float64(d.QueueDepth) > r.Threshold
		f.detail = fmt.Sprintf("%d waiting (threshold %.0f)", d.QueueDepth, r.Threshold)
	case "dead_letters":
		n := seen.increase("dlq:"+name, now, r.Window)
		f.active = n >= r.Threshold
		f.detail = fmt.Sprintf("%.0f moved to the dead-letter queue in the last %s", n, duration(r.Window))
	}
	return f
}

// targets are the names the rule watches among names: its target, or all.
func (r Rule) targets(names []string) []string {
	if r.Target == "" {
		return names
	}
	if slices.Contains(names, r.Target) {
		return []string{r.Target}
	}
	return nil
}

func latest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if t.After(out) {
			out = t
		}
	}
	return out
}

// duration prints d the way people say it: 45s, 31m, 2h5m, 3d4h.
func duration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		h := int(d.Hours())
		return fmt.Sprintf("%dh%dm", h, int(d.Minutes())-60*h)
	default:
		days := int(d.Hours()) / 24
		return fmt.Sprintf("%dd%dh", days, int(d.Hours())-24*days)
	}
}

func size(b uint64) string {
	const gib = 1 << 30
	if b >= gib {
		return fmt.Sprintf("%.1f GiB", float64(b)/gib)
	}
	return fmt.Sprintf("%d MiB", b>>20)
}
