package script

import (
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
)

// The figures of docs/BENCHMARKS.md#scripts, each on the 1.5 KB ORU of
// hl7/testdata, parsed once and cloned per run as a route does:
//
//	go test ./script -run '^$' -bench . -benchmem -count 6

// mapping40 is a 40-line mapping script of the kind feeds need: header
// rewrites, a name and an identifier reshaped, a loop over the results,
// variables for the destination.
const mapping40 = `var facility = msg.get('MSH-4.1');
msg.set('MSH-5', 'EMR');
msg.set('MSH-6', facility == 'ELAB-3' ? 'MAIN' : 'OTHER');
var family = msg.get('PID-5.1');
var given = msg.get('PID-5.2');
msg.set('PID-5.1', family.toUpperCase());
msg.set('PID-5.2', given.toUpperCase());
vars.name = given + ' ' + family;
var mrn = msg.get('PID-3.1').replace(/-/g, '');
msg.set('PID-3.1', mrn);
vars.mrn = mrn;
var born = msg.get('PID-7');
if (born.length >= 8) {
  vars.birthDate = born.substring(0, 4) + '-' + born.substring(4, 6) + '-' + born.substring(6, 8);
}
var sex = msg.get('PID-8');
vars.sex = sex == 'F' ? 'female' : sex == 'M' ? 'male' : 'unknown';
var abnormal = 0, finals = 0;
var obxs = msg.segments('OBX');
for (var i = 0; i < obxs.length; i++) {
  var obx = obxs[i];
  var flag = obx.get('8');
  if (flag == 'H' || flag == 'L' || flag == 'A') {
    abnormal++;
  }
  if (obx.get('11') == 'F') {
    finals++;
  }
  if (obx.get('2') == 'NM' && obx.get('6') == 'mg/dL') {
    obx.set('6', 'mg/dl');
  }
}
vars.abnormal = abnormal;
vars.finals = finals;
var ward = msg.get('PV1-3.1');
vars.ward = ward;
if (ward == '4E') {
  msg.set('PV1-3.4', 'MAIN');
}
msg.set('ORC-1', msg.get('ORC-1') || 'RE');
`

// mirthMapping40 is the same mapping as a Mirth channel writes it.
const mirthMapping40 = `var facility = msg['MSH']['MSH.4']['MSH.4.1'].toString();
msg['MSH']['MSH.5']['MSH.5.1'] = 'EMR';
msg['MSH']['MSH.6']['MSH.6.1'] = facility == 'ELAB-3' ? 'MAIN' : 'OTHER';
var family = msg['PID']['PID.5']['PID.5.1'].toString();
var given = msg['PID']['PID.5']['PID.5.2'].toString();
msg['PID']['PID.5']['PID.5.1'] = family.toUpperCase();
msg['PID']['PID.5']['PID.5.2'] = given.toUpperCase();
channelMap.put('name', given + ' ' + family);
var mrn = msg['PID']['PID.3']['PID.3.1'].toString().replace(/-/g, '');
msg['PID']['PID.3']['PID.3.1'] = mrn;
channelMap.put('mrn', mrn);
var born = msg['PID']['PID.7']['PID.7.1'].toString();
if (born.length >= 8) {
  channelMap.put('birthDate', born.substring(0, 4) + '-' + born.substring(4, 6) + '-' + born.substring(6, 8));
}
var sex = msg['PID']['PID.8']['PID.8.1'].toString();
$c('sex', sex == 'F' ? 'female' : sex == 'M' ? 'male' : 'unknown');
var abnormal = 0, finals = 0;
for each (obx in msg['OBX']) {
  var flag = obx['OBX.8']['OBX.8.1'].toString();
  if (flag == 'H' || flag == 'L' || flag == 'A') {
    abnormal++;
  }
  if (obx['OBX.11']['OBX.11.1'].toString() == 'F') {
    finals++;
  }
  if (obx['OBX.2']['OBX.2.1'].toString() == 'NM' && obx['OBX.6']['OBX.6.1'].toString() == 'mg/dL') {
    obx['OBX.6']['OBX.6.1'] = 'mg/dl';
  }
}
channelMap.put('abnormal', abnormal);
channelMap.put('finals', finals);
var ward = msg['PV1']['PV1.3']['PV1.3.1'].toString();
channelMap.put('ward', ward);
if (ward == '4E') {
  msg['PV1']['PV1.3']['PV1.3.4'] = 'MAIN';
}
if (msg['ORC']['ORC.1']['ORC.1.1'].toString() == '') {
  msg['ORC']['ORC.1']['ORC.1.1'] = 'RE';
}
`

// mirthChannel is a channel's transformer of 20 JavaScript steps with
// 150 for each loops over segments and components between them.
func mirthChannel() string {
	var b strings.Builder
	loops := 0
	for step := 1; step <= 20; step++ {
		fmt.Fprintf(&b, "// step %d\n", step)
		n := 7
		if step <= 10 {
			n = 8
		}
		for j := 0; j < n; j++ {
			switch j % 4 {
			case 0:
				fmt.Fprintf(&b, "var c%d_%d = 0;\nfor each (obx in msg['OBX']) { if (obx['OBX.11']['OBX.11.1'].toString() == 'F') c%d_%d++; }\n", step, j, step, j)
			case 1:
				fmt.Fprintf(&b, "for each (seg in msg.children()) { if (seg.name().toString() == 'NTE') channelMap.put('note%d', seg['NTE.3']['NTE.3.1'].toString()); }\n", step)
			case 2:
				fmt.Fprintf(&b, "var ids%d = [];\nfor each (id in msg['PID']['PID.3']) { ids%d.push(id['PID.3.1'].toString()); }\n", step, step)
			case 3:
				fmt.Fprintf(&b, "for each (obx in msg['OBX']) { if (obx['OBX.8']['OBX.8.1'].toString() == 'H') { obx['OBX.8']['OBX.8.1'] = 'A'; } }\n")
			}
			loops++
		}
		fmt.Fprintf(&b, "channelMap.put('step%d', 'done');\n", step)
	}
	if loops != 150 {
		panic(fmt.Sprintf("%d loops, not 150", loops))
	}
	return b.String()
}

func benchScript(b *testing.B, kind Kind, src string, mirth bool) {
	data, err := os.ReadFile("../hl7/testdata/oru_r01.hl7")
	if err != nil {
		b.Fatal(err)
	}
	m, err := hl7.Parse(data)
	if err != nil {
		b.Fatal(err)
	}
	e := engine(b, Options{})
	s, err := e.Compile("bench.js", kind, src, mirth)
	if err != nil {
		b.Fatal(err)
	}
	c := new(hl7.Message)
	var took []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		m.CloneInto(c)
		if _, err := s.Run(&Input{Message: c}); err != nil {
			b.Fatal(err)
		}
		took = append(took, time.Since(start))
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
}

func BenchmarkScriptMapping40Lines(b *testing.B)      { benchScript(b, Step, mapping40, false) }
func BenchmarkScriptMirthMapping40Lines(b *testing.B) { benchScript(b, Step, mirthMapping40, true) }
func BenchmarkScriptMirthChannel20Steps150Loops(b *testing.B) {
	benchScript(b, Step, mirthChannel(), true)
}
func BenchmarkScriptCondition(b *testing.B) {
	benchScript(b, Condition, "msg.get('MSH-9.1') == 'ORU' && msg.count('OBX') > 0", false)
}

// BenchmarkRunawayAllocation is what a script that allocates without end
// does to the process's heap within a time limit of 5 s, with the memory
// guard and without it (a limit too large to reach): the peak heap, and
// how long the run lasted before it was stopped.
//
//	go test ./script -run '^$' -bench Runaway -benchtime 1x
func BenchmarkRunawayAllocation(b *testing.B) {
	for _, bc := range []struct {
		name  string
		limit int64
	}{{"guard-64MiB", 64 << 20}, {"guard-256MiB", 256 << 20}, {"no-guard", 1 << 40}} {
		b.Run(bc.name, func(b *testing.B) {
			e := engine(b, Options{Limits: Limits{Time: 5 * time.Second, Memory: bc.limit}})
			s, err := e.Compile("runaway.js", Step, "var a = []; while (true) { a.push('xxxxxxxxxxxxxxxxxxxxxxxx' + a.length); }", false)
			if err != nil {
				b.Fatal(err)
			}
			var peak, took float64
			for b.Loop() {
				runtime.GC()
				base := heapBytes()
				stop := make(chan struct{})
				done := make(chan uint64)
				go func() {
					var p uint64
					t := time.NewTicker(time.Millisecond)
					defer t.Stop()
					for {
						select {
						case <-stop:
							done <- p
							return
						case <-t.C:
							p = max(p, heapBytes())
						}
					}
				}()
				start := time.Now()
				_, err := s.Run(&Input{Message: parse(b, oru)})
				took = max(took, float64(time.Since(start).Milliseconds()))
				close(stop)
				p := <-done
				if err == nil {
					b.Fatal("the runaway script was not stopped")
				}
				peak = max(peak, float64(p-min(p, base))/(1<<20))
			}
			b.ReportMetric(peak, "peak-heap-MiB")
			b.ReportMetric(took, "ms-until-stopped")
		})
	}
}
