package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/history"
	"github.com/hl7broker/hl7broker/hl7"
	"github.com/hl7broker/hl7broker/internal/testkit"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A message the broker refuses (AR to its sender) is in the history with
// what could be read of its header, its ACK, code and reason, and none of
// its content; so is one that could not be parsed at all.
func TestRefusedMessagesAreInTheHistoryWithoutContent(t *testing.T) {
	cfg := historyConfig(t, t.TempDir())
	cfg.Listeners[0].AcceptTypes = []string{"ADT"}
	cfg.Routes = cfg.Routes[:1]
	p := startPipeline(t, cfg)
	require.Equal(t, hl7.AR, p.send(t, "in", oruMsg("REF-1")), "ORU is not accepted here")
	require.Equal(t, hl7.AA, p.send(t, "in", adtMsg("OK-1", "MRN5", "A08")))
	require.Equal(t, hl7.AR, p.send(t, "in", "PID|1||MRN9^^^H^MR||Zyxwquist^Ann\r"), "no MSH")

	var page history.RefusedPage
	testkit.WaitFor(t, 20*time.Second, func() error {
		var err error
		page, err = p.ops.Index.RefusedMessages(context.Background(), history.RefusedFilter{})
		if err != nil || len(page.Items) != 2 {
			return fmt.Errorf("%d of 2 refused messages indexed (%v)", len(page.Items), err)
		}
		return nil
	})
	noMSH, oru := page.Items[0], page.Items[1] // newest first
	assert.Equal(t, "REF-1", oru.ControlID)
	assert.Equal(t, []string{"in", "ORU", "R01", "AR", "200"}, []string{oru.Listener, oru.Type, oru.Event, oru.Ack, oru.Code})
	assert.NotEmpty(t, oru.Reason)
	assert.Positive(t, oru.Size)
	assert.NotEmpty(t, oru.Remote)
	assert.Equal(t, "AR", noMSH.Ack)
	assert.Empty(t, noMSH.ControlID, "nothing of its header could be read")
	for _, r := range page.Items {
		for _, phi := range []string{"Jones", "MRN9", "Zyxwquist", "13.2"} {
			assert.NotContains(t, fmt.Sprintf("%+v", r), phi, "no content in the history of a refused message")
		}
	}
	only, err := p.ops.Index.RefusedMessages(context.Background(), history.RefusedFilter{ControlID: "REF-1"})
	require.NoError(t, err)
	assert.Len(t, only.Items, 1, "found by control ID")
}
