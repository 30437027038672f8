package loadtest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestSinkReport(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	acked := map[string]ackedMsg{
		"a1": {patient: "A", sentAt: at(0), ackedAt: at(1)},
		"a2": {patient: "A", sentAt: at(2), ackedAt: at(3)}, // sent after a1 was acked: must arrive after it
		"a3": {patient: "A", sentAt: at(2), ackedAt: at(4)}, // in flight with a2: either order is fine
		"b1": {patient: "B", sentAt: at(0), ackedAt: at(1)},
		"b2": {patient: "B", sentAt: at(5), ackedAt: at(6)}, // never arrives
	}
	s := &sink{arrived: map[string][]int{
		"a2": {1}, // before a1: out of order
		"a1": {2},
		"a3": {3, 4}, // twice
		"b1": {5},
		"zz": {6}, // not sent by this run
	}}
	assert.Equal(t, SinkReport{Delivered: 4, Lost: 1, Duplicates: 1, OutOfOrder: 1, Unknown: 1, OutOfOrderIDs: []string{"a1 after a2"}}, s.report(acked))
}
