package alerts

import (
	"cmp"
	"maps"
	"slices"
	"strings"
)

// merge is the cluster's facts from this broker's (own) and what the
// others shared lately. A sender may be connected to any broker and a
// destination delivered by any, so a source's last message and a
// destination's last success and failure are the latest any broker saw,
// a destination is paused if any says so, and the store's figures (queue
// depth, oldest age, the router's backlog) the largest. Counters
// (negative ACKs, dead letters) are kept per broker and summed by their
// increases, so that a cluster's counter only grows: a broker that
// restarts or leaves does not make it fall (which would read as a reset).
func (e *Engine) merge(own Facts, others []Shared) Facts {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.clusterN == nil {
		e.clusterN, e.brokerN = map[string]float64{}, map[string]float64{}
	}
	all := append([]Shared{{ID: e.ID, At: own.Now, Facts: own}}, others...)
	slices.SortFunc(all[1:], func(a, b Shared) int { return cmp.Compare(a.ID, b.ID) })
	out := own
	out.Sources, out.Destinations = map[string]SourceFacts{}, map[string]DestinationFacts{}
	count := func(broker, key string, v float64) float64 {
		k := broker + "\x00" + key
		if prev, ok := e.brokerN[k]; ok {
			if d := v - prev; d >= 0 {
				e.clusterN[key] += d
			} else {
				e.clusterN[key] += v // that broker restarted: its counter began again
			}
		}
		e.brokerN[k] = v
		return e.clusterN[key]
	}
	for _, sh := range all {
		f := sh.Facts
		for name, s := range f.Sources {
			if _, ours := own.Sources[name]; !ours {
				continue // not in this broker's config (a reload on its way)
			}
			m := out.Sources[name]
			m.LastMessage = latest(m.LastMessage, s.LastMessage)
			m.Negative = count(sh.ID, "nak:"+name, s.Negative)
			out.Sources[name] = m
		}
		for name, d := range f.Destinations {
			if _, ours := own.Destinations[name]; !ours {
				continue
			}
			m, seen := out.Destinations[name]
			if !seen {
				m.QueueDepth = d.QueueDepth
			}
			m.Paused = m.Paused || d.Paused
			m.LastSuccess, m.LastFailure = latest(m.LastSuccess, d.LastSuccess), latest(m.LastFailure, d.LastFailure)
			m.QueueDepth, m.OldestAge = max(m.QueueDepth, d.QueueDepth), max(m.OldestAge, d.OldestAge)
			m.DeadLetters = count(sh.ID, "dlq:"+name, d.DeadLetters)
			out.Destinations[name] = m
		}
		if sh.ID == e.ID {
			continue
		}
		if out.StorageProblem == "" && f.StorageProblem != "" {
			out.StorageProblem = f.StorageProblem
		}
		if f.DiskTotal > 0 && (out.DiskTotal == 0 || float64(f.DiskFree)/float64(f.DiskTotal) < float64(out.DiskFree)/float64(out.DiskTotal)) {
			out.DiskFree, out.DiskTotal = f.DiskFree, f.DiskTotal
		}
		out.UnroutedAge = max(out.UnroutedAge, f.UnroutedAge)
		out.Certificates = append(out.Certificates, f.Certificates...)
	}
	live := map[string]bool{}
	for _, sh := range all {
		live[sh.ID] = true
	}
	for k := range e.brokerN { // brokers gone (each start has an id of its own)
		if broker, _, _ := strings.Cut(k, "\x00"); !live[broker] {
			delete(e.brokerN, k)
		}
	}
	out.Certificates = soonestEach(out.Certificates)
	return out
}

// soonestEach keeps one certificate per kind and name: the one that
// expires first (brokers may hold different renewals of it).
func soonestEach(certs []Certificate) []Certificate {
	by := map[[2]string]Certificate{}
	for _, c := range certs {
		k := [2]string{c.Kind, c.Name}
		if have, ok := by[k]; !ok || c.NotAfter.Before(have.NotAfter) {
			by[k] = c
		}
	}
	out := slices.Collect(maps.Values(by))
	slices.SortFunc(out, func(a, b Certificate) int { return cmp.Compare(a.Kind+" "+a.Name, b.Kind+" "+b.Name) })
	return out
}
