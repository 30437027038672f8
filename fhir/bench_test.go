package fhir

import (
	"os"
	"testing"

	"github.com/hl7broker/hl7broker/hl7"
)

// BenchmarkConvert converts a parsed ORU^R01 (a lab report: 7 results,
// 1.5 KB) and an ADT^A01 (patient, visit, next of kin, allergy,
// diagnosis, insurance) to Bundle JSON. Target: under 50 µs each.
func BenchmarkConvert(b *testing.B) {
	for _, f := range []struct{ name, file string }{{"ORU_R01", "../hl7/testdata/oru_r01.hl7"}, {"ADT_A01", "testdata/adt_a01_full.hl7"}} {
		data, err := os.ReadFile(f.file)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(f.name, func(b *testing.B) {
			m, err := hl7.Parse(data)
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Convert(m, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
