package alerts

import "time"

// Facts are what the rules are evaluated on: the broker as it is at Now.
// Counters are totals since some start; only their increase is read.
type Facts struct {
	Now time.Time
	// Started is when watching began (the broker's start): a source that
	// has sent nothing since is silent from then.
	Started      time.Time
	Sources      map[string]SourceFacts // listeners and sources, by name
	Destinations map[string]DestinationFacts
	// StorageProblem is why the store is not OK; "" when it is.
	StorageProblem string
	// DiskFree and DiskTotal are the data folder's file system, in bytes;
	// DiskTotal 0: unknown (an external NATS cluster keeps the data).
	DiskFree, DiskTotal uint64
	Certificates        []Certificate
	// UnroutedAge is how long the oldest stored input has waited for the
	// router; 0 when none waits.
	UnroutedAge time.Duration
}

// SourceFacts is one listener or source.
type SourceFacts struct {
	LastMessage time.Time // zero: none since Started
	Negative    float64   // negative ACKs sent (AE, AR, CE, CR), a counter
}

// DestinationFacts is one destination.
type DestinationFacts struct {
	Paused      bool
	LastSuccess time.Time // zero: none since Started
	LastFailure time.Time // the last failed attempt; zero: none
	QueueDepth  int64     // -1: unknown
	OldestAge   time.Duration
	DeadLetters float64 // moved to the dead-letter queue, a counter
}

// Certificate is a TLS certificate the broker presents or uses: Kind is
// listener, destination or admin, Name the listener's or destination's
// (admin: "admin").
type Certificate struct {
	Kind, Name string
	NotAfter   time.Time
}

// Where names the certificate for people: "listener lab", "admin".
func (c Certificate) Where() string {
	if c.Kind == c.Name {
		return c.Kind
	}
	return c.Kind + " " + c.Name
}
