package admin

import "time"

// Status is GET /api/v1/status: what runs and how it goes. Rates are per
// second over about the last minute.
type Status struct {
	Version      string              `json:"version"` // the build: "VERSION (commit HASH, GOVERSION)"
	Listeners    []ListenerStatus    `json:"listeners"`
	Routes       []RouteStatus       `json:"routes"`
	Destinations []DestinationStatus `json:"destinations"`
	Storage      StorageStatus       `json:"storage"`
	Cluster      ClusterStatus       `json:"cluster"`
	Config       ConfigStatus        `json:"config"`
}

// ListenerStatus is one listener, or a source of another type (file,
// http, sftp: Type says which; Addr and Connections are an MLLP
// listener's).
type ListenerStatus struct {
	Name        string  `json:"name"`
	Type        string  `json:"type"`
	Addr        string  `json:"addr"`
	Connections int     `json:"connections"`
	Received    uint64  `json:"received"`
	Rejected    uint64  `json:"rejected"` // negative ACKs
	Rate        float64 `json:"rate"`     // messages/s received
	// RateLastHour is the rate in each minute of the last hour, oldest
	// first (the console's chart); RateLastDay in each 5 minutes of the
	// last day.
	RateLastHour []float64 `json:"rate_last_hour"`
	RateLastDay  []float64 `json:"rate_last_day"`
}

// RouteStatus is one route.
type RouteStatus struct {
	Name    string   `json:"name"`
	To      []string `json:"to"`
	Matches uint64   `json:"matches"`
}

// DestinationStatus is one destination.
type DestinationStatus struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Paused bool   `json:"paused"`
	// State is running, retrying (the last attempt failed; StateReason
	// says why), paused, or stopped (its worker is restarting; why).
	State       string `json:"state"`
	StateReason string `json:"state_reason,omitempty"`
	QueueDepth  int64  `json:"queue_depth"` // -1 when unknown
	// DeadLettersNow is what the dead-letter queue holds for it now
	// (DeadLetter counts what went there in all); -1: unknown. With
	// history on, Delivered, Failures and DeadLetter (and a listener's
	// Received and Rejected) are the history index's totals, which go on
	// across restarts; with history off they count from this process's
	// start.
	DeadLettersNow int64   `json:"dead_letters_now"`
	Delivered      uint64  `json:"delivered"`
	Failures       uint64  `json:"failures"` // failed attempts
	DeadLetter     uint64  `json:"dead_lettered"`
	Rate           float64 `json:"rate"` // messages/s delivered
	// RateLastHour is the rate in each minute of the last hour, oldest
	// first (the console's chart).
	RateLastHour []float64 `json:"rate_last_hour"`
	RateLastDay  []float64 `json:"rate_last_day"`
	// QueueLastHour and QueueLastDay are the queue's depth a minute and
	// 5 minutes apart, oldest first.
	QueueLastHour []float64  `json:"queue_last_hour"`
	QueueLastDay  []float64  `json:"queue_last_day"`
	LastError     string     `json:"last_error,omitempty"`
	LastErrAt     *time.Time `json:"last_error_at,omitempty"`
	// OldestUndeliveredSeconds is the age of the oldest copy waiting; 0
	// when none waits.
	OldestUndeliveredSeconds float64 `json:"oldest_undelivered_seconds"`
}

// StorageStatus is the store.
type StorageStatus struct {
	OK         bool                    `json:"ok"`
	Problem    string                  `json:"problem,omitempty"`
	Durability string                  `json:"durability"`
	Streams    map[string]StreamStatus `json:"streams"`
}

// StreamStatus is one stream's size.
type StreamStatus struct {
	Messages uint64 `json:"messages"`
	Bytes    uint64 `json:"bytes"`
	FirstSeq uint64 `json:"first_seq"`
	LastSeq  uint64 `json:"last_seq"`
}

// ClusterStatus is where NATS runs.
type ClusterStatus struct {
	Mode      string `json:"mode"`                // embedded | external
	Connected string `json:"connected,omitempty"` // the server's URL, redacted
	Replicas  int    `json:"replicas"`
	Leader    string `json:"leader,omitempty"` // HL7_IN's leader
}

// ConfigStatus is the config in force.
type ConfigStatus struct {
	File       string    `json:"file"`
	LoadedAt   time.Time `json:"loaded_at"`
	LastReload string    `json:"last_reload"` // applied, partly_applied, invalid, or "" before any
	Problem    string    `json:"problem,omitempty"`
}
