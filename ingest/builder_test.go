package ingest

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/script"
)

// admitScript builds an ADT^A04 from a registration document, the same
// for JSON and for XML as xmlTree reads it.
const admitScript = `
var p = msg.patient;
if (!p.mrn) { throw new Error('the document has no patient.mrn'); }
return ['MSH|^~\\&|WEBREG|HOSP|BROKER|HOSP|20260114081530||ADT^A04^ADT_A01|' + msg.id + '|P|2.5.1',
        'EVN|A04|20260114081500',
        'PID|1||' + p.mrn + '^^^HOSP^MR||' + p.family + '^' + p.given + '||' + p.born + '|' + p.sex,
        'PV1|1|O'].join('\n');`

func builder(t testing.TB, format string) *Builder {
	t.Helper()
	e, err := script.NewEngine(script.Options{})
	require.NoError(t, err)
	s, err := e.Compile("admit.js", script.Builder, admitScript, false)
	require.NoError(t, err)
	return &Builder{Format: format, Script: s}
}

// JSON in over HTTP: a batch of three documents, one without an MRN. The
// two good ones are stored and acknowledged; the bad one is refused with
// the script's place and reason, no value; the status says not all were
// stored.
func TestHTTPSourceTakesJSONDocuments(t *testing.T) {
	url, n, src := httpSourceServer(t, config.SourceConfig{Format: "json"}, zerolog.Nop(), true)
	src.Builder = builder(t, "json")
	doc := func(id, mrn string) string {
		return `{"id": "` + id + `", "patient": {"mrn": "` + mrn + `", "family": "Quimby", "given": "Ann", "born": "19610615", "sex": "F"}}`
	}
	status, h, body := post(t, url, httpToken, "application/json", "["+doc("J1", "M1")+","+strings.Replace(doc("J2", ""), `"mrn": ""`, `"x": 1`, 1)+","+doc("J3", "M3")+"]")
	assert.Equal(t, http.StatusBadRequest, status, body)
	assert.Equal(t, "application/json", h.Get("Content-Type"))
	var out struct{ Results []DocumentResult }
	require.NoError(t, json.Unmarshal([]byte(body), &out))
	require.Len(t, out.Results, 3)
	assert.Equal(t, DocumentResult{Index: 0, Ack: "AA", ControlID: "J1"}, out.Results[0])
	assert.Equal(t, DocumentResult{Index: 2, Ack: "AA", ControlID: "J3"}, out.Results[2])
	assert.Contains(t, out.Results[1].Error, "script admit.js line 3:")
	assert.Contains(t, out.Results[1].Error, "uncaught Error", "what it threw may quote the document: only its place is said")
	assert.NotContains(t, body, "Quimby", "no value in the response")
	assert.EqualValues(t, 2, streamCount(t, n))

	status, _, body = post(t, url, httpToken, "application/json", `{"id": "J4", "patient": `)
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "not JSON")
	status, _, _ = post(t, url, httpToken, "x-application/hl7-v2+er7", fileMsg("H1"))
	assert.Equal(t, http.StatusUnsupportedMediaType, status, "a JSON source takes JSON")
}

// XML in: an XML document is read as a tree (elements by name, text as
// values) and its message built; XML that does not parse is refused. A
// file of JSON documents: each good one stored, a bad one reported with
// the script's reason, no value.
func TestFileSourceTakesXMLDocuments(t *testing.T) {
	b := builder(t, "xml")
	docs, err := b.Build([]byte(`<?xml version="1.0"?><registration id="X1"><id>X1</id><patient><mrn>M9</mrn><family>Quimby</family><given>Ann</given><born>19610615</born><sex>F</sex></patient></registration>`))
	require.NoError(t, err)
	require.Len(t, docs, 1)
	require.NoError(t, docs[0].Err)
	assert.Contains(t, string(docs[0].Raw), "PID|1||M9^^^HOSP^MR||Quimby^Ann||19610615|F\r")
	assert.True(t, strings.HasSuffix(string(docs[0].Raw), "PV1|1|O\r"), "segments end with CR")

	_, err = b.Build([]byte(`<registration><patient>`))
	assert.ErrorContains(t, err, "not XML")

	f := newFileFixture(t, config.SourceConfig{Format: "json"})
	f.src.Builder = builder(t, "json")
	f.write(t, "regs.json", `[{"id": "F1", "patient": {"mrn": "M1", "family": "Quimby", "given": "Ann", "born": "19610615", "sex": "F"}}, {"id": "F2", "patient": {}}]`)
	_, failed := FolderOf(f.src.Config).FileDirs()
	f.scanUntil(t, "regs.json in error/", func() bool { return exists(filepath.Join(failed, "regs.json.report.json")) })
	assert.EqualValues(t, 1, streamCount(t, f.nats), "the good document's message is stored")
	raw, err := os.ReadFile(filepath.Join(failed, "regs.json.report.json"))
	require.NoError(t, err)
	var r Report
	require.NoError(t, json.Unmarshal(raw, &r))
	require.Len(t, r.Refused, 1)
	assert.Equal(t, 1, r.Refused[0].Index)
	assert.Equal(t, "document", r.Refused[0].Location)
	assert.Contains(t, r.Refused[0].Reason, "script admit.js line 3:21: uncaught Error")
	assert.NotContains(t, string(raw), "Quimby")
}
