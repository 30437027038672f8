package hl7

import (
	"os"
	"path/filepath"
	"testing"
)

// Benchmarks for docs/BENCHMARKS.md. Run:
//   go test ./hl7 -run '^$' -bench . -benchmem -count 6
// The headline is ParseRead: parse and read MSH-9 and MSH-10 into a reused
// Message, which must not allocate.

func benchParseRead(b *testing.B, data []byte) {
	b.Helper()
	var m Message
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := m.ParseInto(data); err != nil {
			b.Fatal(err)
		}
		t, _ := m.Raw(PathMSH9)
		c, _ := m.Raw(PathMSH10)
		if len(t) == 0 || len(c) == 0 {
			b.Fatal("no MSH-9 or MSH-10")
		}
	}
}

func BenchmarkParseRead(b *testing.B) {
	b.Run("ORU-1.5KB", func(b *testing.B) { benchParseRead(b, readTestdata(b, "oru_r01.hl7")) })
	b.Run("ORU-100KB", func(b *testing.B) { benchParseRead(b, bigORU(100<<10)) })
	b.Run("corpus-bigmessage-111KB", func(b *testing.B) {
		data, err := os.ReadFile(filepath.Join(corpusDir, "CDCgov__data-exchange-hl7", "bigmessage.txt"))
		if err != nil {
			b.Skip("corpus not available")
		}
		benchParseRead(b, data)
	})
}

// BenchmarkParseNew is Parse with a fresh Message each time, as a caller
// that does not pool Messages would see.
func BenchmarkParseNew(b *testing.B) {
	data := readTestdata(b, "oru_r01.hl7")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		m, err := Parse(data)
		if err != nil {
			b.Fatal(err)
		}
		_ = m.ControlID()
	}
}

// BenchmarkReadFields reads ten fields of a parsed ORU, two with escapes.
func BenchmarkReadFields(b *testing.B) {
	m := mustParse(b, readTestdata(b, "oru_r01.hl7"))
	paths := []Path{PathMSH91, PathMSH92, PathMSH10, PathMSH12, MustParsePath("PID-3.1"), MustParsePath("PID-5.1"),
		MustParsePath("OBX[3]-5"), MustParsePath("OBX[6]-3.2"), MustParsePath("OBX[7]-5"), MustParsePath("NTE-3")}
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range paths {
			_ = m.Value(p)
		}
	}
}

// BenchmarkEditEncode parses the ORU, sets three fields (one escaped, one
// created past the end of its segment) and takes the bytes.
func BenchmarkEditEncode(b *testing.B) {
	data := readTestdata(b, "oru_r01.hl7")
	p1, p2, p3 := MustParsePath("MSH-5"), MustParsePath("PID-5.1"), MustParsePath("OBX[2]-20")
	var m Message
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if err := m.ParseInto(data); err != nil {
			b.Fatal(err)
		}
		if err := m.Set(p1, "EMR"); err != nil {
			b.Fatal(err)
		}
		if err := m.Set(p2, "O'Brien & Sons"); err != nil {
			b.Fatal(err)
		}
		if err := m.Set(p3, "X"); err != nil {
			b.Fatal(err)
		}
		if len(m.Bytes()) < len(data) {
			b.Fatal("short output")
		}
	}
}

func BenchmarkSplitBatch(b *testing.B) {
	data := readTestdata(b, "batch_file.hl7")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SplitBatch(data, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuildAck(b *testing.B) {
	m := mustParse(b, readTestdata(b, "oru_r01.hl7"))
	b.ReportAllocs()
	for b.Loop() {
		_ = BuildAck(m, AckOptions{ControlID: "A1"})
	}
}
