package broker

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
	"github.com/hl7broker/hl7broker/history"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/hl7broker/hl7broker/mllp"
)

// invalidADT has a date that does not exist (PID-7) and a sex outside
// HL7 table 0001 (PID-8).
func invalidADT(id string) string {
	return "MSH|^~\\&|REG|HOSP|EMR|HOSP|20261201083000||ADT^A01^ADT_A01|" + id + "|P|2.5.1\rEVN|A01|20261201083000\r" +
		"PID|1||M1^^^HOSP^MR||Nguyen^Anh||20260230|X\rPV1|1|I\r"
}

// validation: reject answers AR with an ERR per problem, ERR-2 where and
// ERR-3 the HL7 table 0357 code, and stores nothing; validation: record
// (the default) stores the message, answers AA, and keeps the problems
// (never the values) in its journey and on its page.
func TestValidationRejectsOrRecordsProblems(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.DataDir = t.TempDir()
	cfg.History = config.HistoryConfig{Enabled: true}
	cfg.Listeners = []config.ListenerConfig{{Name: "strict", Addr: "127.0.0.1:0", Validation: "reject"}, {Name: "lax", Addr: "127.0.0.1:0"}}
	cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"files"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "files", Type: "file", Options: &delivery.FileOptions{Dir: t.TempDir()}}}
	p := startPipeline(t, cfg)

	c := &mllp.Client{Addr: p.Addr("strict").String()}
	defer c.Close()
	reply, err := c.Send(context.Background(), []byte(invalidADT("V-REJ")))
	require.NoError(t, err)
	ack := strings.Split(strings.TrimRight(string(reply), "\r"), "\r")
	require.Len(t, ack, 4, "MSH, MSA and an ERR per problem: %q", reply)
	assert.True(t, strings.HasPrefix(ack[1], "MSA|AR|V-REJ|"), ack[1])
	assert.Equal(t, "ERR||PID^1^7^1^1|102^Data type error^HL70357|E||||message not valid for its HL7 version (2 problems; the first: PID-7.1 (Time) is not a date and time (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ]))", ack[2])
	assert.Equal(t, "ERR||PID^1^8^1|103^Table value not found^HL70357|E||||PID-8 (Administrative Sex) is not a value of HL7 table 0001", ack[3])
	assert.NotContains(t, string(reply), "20260230", "no value in the ACK")

	require.Equal(t, hl7.AA, p.send(t, "lax", invalidADT("V-REC")))
	ix := p.ops.Index
	var v history.View
	testkit.WaitFor(t, 20*time.Second, func() error {
		page, err := ix.Search(context.Background(), history.Filter{Limit: 10})
		if err != nil || len(page.Items) != 1 {
			return fmt.Errorf("%d messages indexed (%v); want V-REC only", len(page.Items), err)
		}
		var id uint64
		fmt.Sscan(page.Items[0].ID, &id)
		v, err = p.ops.Show(context.Background(), id)
		return err
	})
	assert.Equal(t, "V-REC", v.ControlID, "the rejected message was not stored")
	require.Len(t, v.Validation, 2)
	assert.Equal(t, "PID-7.1", v.Validation[0].Location)
	assert.Equal(t, 102, v.Validation[0].Code)
	assert.Equal(t, "PID-8", v.Validation[1].Location)
	assert.Equal(t, 103, v.Validation[1].Code)
	assert.NotContains(t, fmt.Sprint(v.Journey), "20260230")
	assert.Equal(t, 2.0, testutil.ToFloat64(p.metrics.problems.WithLabelValues("strict", "102"))+testutil.ToFloat64(p.metrics.problems.WithLabelValues("strict", "103")))
	assert.Equal(t, 1.0, testutil.ToFloat64(p.metrics.problems.WithLabelValues("lax", "103")))
}

// A listener's conformance profile is checked with its validation: a
// message the standard allows but the profile does not (PID-2 is X in
// it) is refused with the profile's problem at its place.
func TestListenerProfileIsEnforced(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.DataDir = t.TempDir()
	cfg.Listeners = []config.ListenerConfig{{Name: "site", Addr: "127.0.0.1:0", Validation: "reject", Profile: "../hl7/spec/testdata/adt_a01_profile.xml"}}
	cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"files"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "files", Type: "file", Options: &delivery.FileOptions{Dir: t.TempDir()}}}
	p := startPipeline(t, cfg)
	good := "MSH|^~\\&|REG|HOSP|EMR|HOSP|20261201083000||ADT^A01^ADT_A01|P-1|P|2.5.1\rEVN|A01|20261201083000\r" +
		"PID|1||M1^^^HOSP^MR||Nguyen^Anh||19700101|F\rPV1|1|I\r"
	require.Equal(t, hl7.AA, p.send(t, "site", good))
	c := &mllp.Client{Addr: p.Addr("site").String()}
	defer c.Close()
	reply, err := c.Send(context.Background(), []byte(strings.Replace(strings.Replace(good, "P-1", "P-2", 1), "PID|1||", "PID|1|OLD7|", 1)))
	require.NoError(t, err)
	assert.Contains(t, string(reply), "MSA|AR|P-2|")
	assert.Contains(t, string(reply), "ERR||PID^1^2|100^Segment sequence error^HL70357|E")
	assert.NotContains(t, string(reply), "OLD7")
}

// A site's own rules: a field required, a value from one of
// scripts.tables, and a rule tied to another field by a condition.
func TestSiteRules(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.DataDir = t.TempDir()
	cfg.History = config.HistoryConfig{Enabled: true}
	cfg.Scripts.Tables = map[string]config.TableConfig{"classes": {Table: map[string]string{"I": "inpatient", "O": "outpatient"}}}
	inpatient := "I"
	cfg.Listeners = []config.ListenerConfig{{Name: "adt", Addr: "127.0.0.1:0", Rules: []config.SiteRule{
		{Field: "PID-3.4", Required: true},
		{Field: "PV1-2", Table: "classes"},
		{Field: "PV1-3", Required: true, When: &condition.When{Field: "PV1-2", Equals: &inpatient}},
	}}}
	cfg.Routes = []config.RouteConfig{{Name: "all", To: []string{"files"}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "files", Type: "file", Options: &delivery.FileOptions{Dir: t.TempDir()}}}
	p := startPipeline(t, cfg)
	msg := func(id, pid3, pv1 string) string {
		return "MSH|^~\\&|REG|HOSP|EMR|HOSP|20261201083000||ADT^A01^ADT_A01|" + id + "|P|2.5.1\rEVN|A01|20261201083000\r" +
			"PID|1||" + pid3 + "||Nguyen^Anh||19700101|F\r" + pv1 + "\r"
	}
	require.Equal(t, hl7.AA, p.send(t, "adt", msg("S-OK", "M1^^^HOSP^MR", "PV1|1|I|W1^1")))
	require.Equal(t, hl7.AA, p.send(t, "adt", msg("S-BAD", "M2", "PV1|1|I")))
	require.Equal(t, hl7.AA, p.send(t, "adt", msg("S-CLASS", "M3^^^HOSP^MR", "PV1|1|Z")))
	problems := func(ctl string) []string {
		var out []string
		testkit.WaitFor(t, 20*time.Second, func() error {
			page, err := p.ops.Index.Search(context.Background(), history.Filter{ControlID: ctl})
			if err != nil || len(page.Items) != 1 {
				return fmt.Errorf("%s not indexed yet", ctl)
			}
			var id uint64
			fmt.Sscan(page.Items[0].ID, &id)
			v, err := p.ops.Show(context.Background(), id)
			if err != nil {
				return err
			}
			out = nil
			for _, pr := range v.Validation {
				out = append(out, fmt.Sprintf("%s %d %s", pr.Location, pr.Code, pr.Reason))
			}
			return nil
		})
		return out
	}
	assert.Empty(t, problems("S-OK"))
	assert.Equal(t, []string{"PID-3.4 101 site rule: PID-3.4 is required", "PV1-3 101 site rule: PV1-3 is required"}, problems("S-BAD"))
	assert.Equal(t, []string{"PV1-2 103 site rule: PV1-2 is not a value of table classes"}, problems("S-CLASS"))
}
