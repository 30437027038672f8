package wire

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

// sameEvent compares two events, times by instant and offset.
func sameEvent(a, b Event) bool {
	_, oa := a.At.Zone()
	_, ob := b.At.Zone()
	if !a.At.Equal(b.At) || oa != ob {
		return false
	}
	a.At, b.At = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

var sampleEvents = []Event{
	{Kind: EventReceived, At: time.Date(2026, 12, 1, 8, 0, 0, 123456789, time.UTC), Message: 42, Listener: "adt-in", Remote: "10.0.0.7:51234", Ack: "AA",
		Type: "ADT", Trigger: "A01", ControlID: "MSG0001", SendingApp: "REG", SendingFac: "HOSP", Version: "2.5.1", Size: 1234,
		Keys: map[string][]string{"mrn": {"123", "456"}, "visit": {"V1"}, "none": {}}},
	{Kind: EventReceived, At: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), Message: 45, ReplayOf: "message 42", By: "ops", Size: 9, Keys: map[string][]string{"x": nil}},
	{Kind: EventReceived, At: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC), Message: 46, Size: 9, SHA256: "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Keys: map[string][]string{"mrn": {"1"}},
		Problems: []Problem{{Location: "PID-3", Code: 101, Reason: "required field PID-3 (Patient Identifier List) is empty"}, {Location: "PID-7.1", Code: 102, Reason: "<date>"}}},
	{Kind: EventReceived, At: time.Date(2026, 12, 1, 8, 0, 0, 0, time.FixedZone("", 3600)), Message: 43, Duplicate: true, Ack: "CA"},
	{Kind: EventRouted, At: time.Date(2026, 12, 1, 8, 0, 1, 5, time.UTC), Message: 42, Routes: []string{"adt", "all"},
		Destinations: []string{"emr", "lis"}, Changed: []string{"lis"}, OutSeqs: map[string]uint64{"lis": 9, "emr": 8}},
	{Kind: EventRouted, At: time.Date(2026, 12, 1, 8, 0, 1, 0, time.UTC), Message: 44, Unrouted: true},
	{Kind: EventAttempt, At: time.Date(2026, 12, 1, 8, 0, 2, 0, time.UTC), Message: 42, Destination: "emr", Attempt: 3, Millis: 12.625,
		Outcome: "retry", Code: "AE", Reason: `rejected: AE "segment PID" <x> & \ é`},
	{Kind: EventDelivered, At: time.Date(2026, 12, 1, 8, 0, 3, 0, time.UTC), Message: 42, Destination: "fhir", Attempt: 1, Code: "200",
		Sent: []byte("{\"resourceType\":\"Bundle\"}\xff"), SentName: "/out/MSG0001.json", SentSize: 300000, Response: []byte("HTTP 200 OK\n\n{}"),
		SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
	{Kind: EventDelivered, At: time.Date(2026, 12, 1, 8, 0, 3, 0, time.UTC), Message: 42, Destination: "emr", Sent: []byte{}, SentSize: -1, Response: []byte("MSH|^~\\&\rMSA|AA|1\r")},
	{Kind: EventPurged, At: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), Message: 42, Destination: "emr", DLQ: 7, By: "ops"},
	{Kind: EventReplayed, At: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC), Message: 42, By: "ops", As: 100, Routes: []string{}},
}

func TestEventCodecMatchesEncodingJSON(t *testing.T) {
	for _, e := range sampleEvents {
		want, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendEvent(nil, e)
		if err != nil || string(got) != string(want) {
			t.Fatalf("AppendEvent:\n got %s (%v)\nwant %s", got, err, want)
		}
		var viaJSON, viaParse Event
		if err := json.Unmarshal(want, &viaJSON); err != nil {
			t.Fatal(err)
		}
		if err := ParseEvent(want, &viaParse); err != nil || !sameEvent(viaJSON, viaParse) {
			t.Fatalf("ParseEvent(%s):\n got %+v (%v)\nwant %+v", want, viaParse, err, viaJSON)
		}
	}
	var e Event
	if err := ParseEvent([]byte(`{"kind":"received","at":"2026-12-01T08:00:00Z","message":1,"newer_field":{"x":[1]}}`), &e); err != nil || e.Message != 1 {
		t.Fatalf("a key from a newer version: %+v, %v", e, err)
	}
	if err := ParseEvent([]byte(`{"kind":"received",`), &e); err == nil {
		t.Fatal("a broken line parsed")
	}
}

func FuzzEventCodec(f *testing.F) {
	for _, e := range sampleEvents {
		f.Add(e.Kind, e.Reason, e.Destination, e.Message, e.Attempt, e.Millis, e.At.UnixNano(), e.Unrouted)
	}
	f.Fuzz(func(t *testing.T, kind, reason, dest string, msg uint64, attempt int, ms float64, at int64, unrouted bool) {
		e := Event{Kind: kind, At: time.Unix(0, at).UTC(), Message: msg, Reason: reason, Destination: dest, Attempt: attempt, Millis: ms,
			Unrouted: unrouted, Destinations: []string{dest, kind}, OutSeqs: map[string]uint64{dest: msg, reason: 1},
			ControlID: reason, Size: attempt, Keys: map[string][]string{kind: {reason, dest}}}
		want, werr := json.Marshal(e)
		got, gerr := AppendEvent(nil, e)
		if (werr == nil) != (gerr == nil) || string(got) != string(want) {
			t.Fatalf("AppendEvent:\n got %s (%v)\nwant %s (%v)", got, gerr, want, werr)
		}
		if werr != nil {
			return
		}
		var viaJSON, viaParse Event
		jerr := json.Unmarshal(want, &viaJSON)
		perr := ParseEvent(want, &viaParse)
		if (jerr == nil) != (perr == nil) || (jerr == nil && !sameEvent(viaJSON, viaParse)) {
			t.Fatalf("ParseEvent(%s):\n got %+v (%v)\nwant %+v (%v)", want, viaParse, perr, viaJSON, jerr)
		}
	})
}

func FuzzParseEvent(f *testing.F) {
	for _, e := range sampleEvents {
		b, _ := json.Marshal(e)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		var viaJSON, viaParse Event
		jerr := json.Unmarshal(line, &viaJSON)
		perr := ParseEvent(line, &viaParse)
		if jerr == nil && (perr != nil || !sameEvent(viaJSON, viaParse)) {
			t.Fatalf("ParseEvent(%q):\n got %+v (%v)\nwant %+v", line, viaParse, perr, viaJSON)
		}
	})
}
