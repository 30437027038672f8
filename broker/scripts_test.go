package broker

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/transforms"
	"github.com/hl7broker/hl7broker/wire"
)

// A script condition picks the messages, a script step edits them and sets
// a variable, and the destination's encoder builds the JSON it posts from
// both: the variable travels with the copy through HL7_OUT. A message on
// which the step throws is dead-lettered with the script's position, and
// the next flows.
func TestScriptsFromConditionThroughStepToEncoder(t *testing.T) {
	bodies := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
	}))
	defer srv.Close()
	cfg := baseConfig(t)
	step := "var mrn = msg.get('PID-3.1');\nif (mrn == 'BAD') { null.boom(); }\nvars.mrn = mrn;\nmsg.set('PID-5.1', msg.get('PID-5.1').toUpperCase());"
	cfg.Routes = []config.RouteConfig{{Name: "adt", To: []string{"web"},
		When:      config.WhenConfig{Script: "msg.get('MSH-9.2') != 'A08'"},
		Transform: []transforms.Spec{{Op: "script", Options: &transforms.ScriptOptions{Script: step}}}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "web", Type: "http", Options: &delivery.HTTPOptions{URL: srv.URL}, Retry: fast,
		Encoder: &config.EncoderConfig{Script: "return {mrn: vars.mrn, family: msg.get('PID-5.1'), event: msg.get('MSH-9.2')}"}}}
	p := startPipeline(t, cfg)

	assert.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("S-1", "M1", "A08")), "not routed: the condition says no")
	assert.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("S-2", "BAD", "A01")))
	assert.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("S-3", "M3", "A01")))
	select {
	case b := <-bodies:
		assert.JSONEq(t, `{"mrn":"M3","family":"MÜLLER","event":"A01"}`, b)
	case <-time.After(10 * time.Second):
		t.Fatal("the encoder's payload did not arrive")
	}

	s, err := p.NATS().JetStream.Stream(context.Background(), wire.StreamDLQ)
	require.NoError(t, err)
	m, err := s.GetLastMsgForSubject(context.Background(), "hl7.dlq._transform")
	require.NoError(t, err)
	assert.Contains(t, string(m.Data), "|S-2|")
	reason := m.Header.Get("HL7-DLQ-Reason")
	assert.Contains(t, reason, "transform step 1 (script): script route adt step 1 line 2:")
	assert.Contains(t, reason, "uncaught TypeError")
	assert.NotContains(t, reason, "BAD", "no value in the reason")
	assert.NotContains(t, p.logs.String(), "Müller")
	assert.Empty(t, bodies, "S-1 and S-2 sent nothing")
}

// A script that runs away is stopped by its time limit; the message is
// dead-lettered and the broker goes on.
func TestARunawayScriptIsStoppedAndTheBrokerGoesOn(t *testing.T) {
	emr := newEndpoint(t, "", nil)
	cfg := baseConfig(t)
	cfg.Scripts.TimeLimit = 300 * time.Millisecond
	cfg.Routes = []config.RouteConfig{{Name: "adt", To: []string{"emr"}, Transform: []transforms.Spec{{Op: "script", Options: &transforms.ScriptOptions{
		Script: "if (msg.get('PID-3.1') == 'LOOP') { while (true) {} }"}}}}}
	cfg.Destinations = []config.DestinationConfig{{Name: "emr", Type: "mllp", Options: &delivery.MLLPOptions{Addr: emr.addr}, Retry: fast}}
	p := startPipeline(t, cfg)
	assert.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("L-1", "LOOP", "A01")))
	assert.Equal(t, hl7.AA, p.send(t, "adt", adtMsg("L-2", "M2", "A01")))
	require.Eventually(t, func() bool { return len(emr.got()) == 1 }, 10*time.Second, 10*time.Millisecond, "waiting for L-2")
	assert.True(t, strings.Contains(emr.got()[0], "|L-2|"))
	s, err := p.NATS().JetStream.Stream(context.Background(), wire.StreamDLQ)
	require.NoError(t, err)
	m, err := s.GetLastMsgForSubject(context.Background(), "hl7.dlq._transform")
	require.NoError(t, err)
	assert.Contains(t, m.Header.Get("HL7-DLQ-Reason"), "script route adt step 1 line 1:")
	assert.Contains(t, m.Header.Get("HL7-DLQ-Reason"), "time limit of 300ms exceeded")
}
