package spec

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/hl7"
)

// A profile in the standard XML narrows a structure: its usage (R, X),
// cardinality, lengths and tables are enforced, each problem at its
// place and never with the value.
func TestProfileEnforcesUsageCardinalityLengthAndTables(t *testing.T) {
	f, err := os.Open("testdata/adt_a01_profile.xml")
	require.NoError(t, err)
	defer f.Close()
	p, err := ParseProfile(f)
	require.NoError(t, err)
	assert.Equal(t, "ADT_A01", p.MsgStructID)

	check := func(pid, extra string) []string {
		msg := "MSH|^~\\&|REG|HOSP|EMR|HOSP|20261201083000||ADT^A01^ADT_A01|C1|P|2.5.1\rEVN|A01|20261201083000\r" + pid + "\rPV1|1|I\r" + extra
		m, err := hl7.Parse([]byte(msg))
		require.NoError(t, err)
		var out []string
		for _, pr := range p.Check(m) {
			out = append(out, pr.Location+" "+strconv.Itoa(pr.Code))
			assert.NotContains(t, pr.Reason, "Qwerty")
		}
		return out
	}
	assert.Empty(t, check("PID|1||M1^^^HOSP^MR||Qwerty^Ann||19700101|F", ""), "a conforming message")
	assert.Equal(t, []string{"PID-2 100"}, check("PID|1|OLD1|M1^^^HOSP^MR||Qwerty^Ann||19700101|F", ""), "PID-2 is X")
	assert.Equal(t, []string{"PID-8 101"}, check("PID|1||M1^^^HOSP^MR||Qwerty^Ann||19700101|", ""), "PID-8 is R")
	assert.Equal(t, []string{"PID-3.4 101"}, check("PID|1||M1||Qwerty^Ann||19700101|F", ""), "PID-3.4 is R in a valued field")
	assert.Equal(t, []string{"PID-3[3] 102"}, check("PID|1||M1^^^H~M2^^^H~M3^^^H||Qwerty^Ann||19700101|F", ""), "PID-3 at most twice")
	assert.Equal(t, []string{"PID-5.1 104"}, check("PID|1||M1^^^HOSP||Qwertyuiopasdfghjklzx^Ann||19700101|F", ""), "PID-5.1 at most 20")
	assert.Equal(t, []string{"PID-8 103"}, check("PID|1||M1^^^HOSP||Qwerty^Ann||19700101|X", ""), "PID-8 from table 0001")
	assert.Equal(t, []string{"NK1 100"}, check("PID|1||M1^^^HOSP||Qwerty^Ann||19700101|F", "NK1|1|Qwerty^Bob\r"), "NK1 is X")
	assert.Equal(t, []string{"PID[2] 100"}, check("PID|1||M1^^^HOSP||Qwerty^Ann||19700101|F\rPID|2||M2^^^HOSP||Qwerty^Ann||19700101|F", ""), "one PID at most")
	assert.Empty(t, check("PID|1||M1^^^HOSP||Qwerty^Ann||19700101|F", "IN1|1\r"), "an optional group")

	_, err = ParseProfile(strings.NewReader("<HL7v2xConformanceProfile><MetaData/></HL7v2xConformanceProfile>"))
	assert.Error(t, err, "no static definition")
	_, err = ParseProfile(strings.NewReader("not xml"))
	assert.Error(t, err)
}
