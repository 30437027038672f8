package hl7

import "testing"

func TestControlIDOfReadsOnlyTheHeader(t *testing.T) {
	for _, tc := range []struct {
		name, data, want string
		ok               bool
	}{
		{"plain", "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|CTRL-1|P|2.5\rPID|1||X\r", "CTRL-1", true},
		{"escaped", "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|a\\F\\b|P|2.5\r", "a|b", true},
		{"leading newline and LF ends", "\nMSH|^~\\&|A|B|C|D|20260101||ADT^A01|X9|P|2.5\nPID|1\n", "X9", true},
		{"bad rest still read", "MSH|^~\\&|A|B|C|D|20260101||ADT^A01|X7|P|2.5\r\x00garbage", "X7", true},
		{"not HL7", "hello", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := ControlIDOf([]byte(tc.data))
			if got != tc.want || ok != tc.ok {
				t.Fatalf("ControlIDOf = %q, %v; want %q, %v", got, ok, tc.want, tc.ok)
			}
			if tc.ok {
				if m, err := Parse([]byte(tc.data)); err == nil && m.ControlID() != got {
					t.Fatalf("full parse says %q", m.ControlID())
				}
			}
		})
	}
}
