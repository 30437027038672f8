package admin

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/history"
	"github.com/hl7broker/hl7broker/wire"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// BenchmarkConsoleMillion times what the console's pages fetch, over
// HTTP, from an index of a million messages (HL7BROKER_INDEX_BENCH_N): the
// page itself and its script, and the API call behind each view. The
// target: every page under 300 ms. A message page adds one read of the
// message from JetStream to the index lookup timed here.
//
//	go test ./admin -run '^$' -bench ConsoleMillion -benchtime 1x
func BenchmarkConsoleMillion(b *testing.B) {
	n := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("HL7BROKER_INDEX_BENCH_N")); err == nil && v > 0 {
		n = v
	}
	ix, err := history.BuildSynthetic(filepath.Join(b.TempDir(), "history.db"), n)
	if err != nil {
		b.Fatal(err)
	}
	defer ix.Close()
	tokens := &Tokens{}
	tokens.Set([]Token{NewToken("olga", RoleOperator, "operator-token-0123456789")})
	api := &API{Tokens: tokens, Ops: &history.Ops{Index: ix}, SearchKeys: []string{"accession", "mrn"},
		Status: func(context.Context) Status { return Status{} }, Audit: func(context.Context, wire.AuditEntry) error { return nil }}
	s := &Server{Metrics: prometheus.NewRegistry(), Ready: func(context.Context) Readiness { return Readiness{Ready: true} }, Log: zerolog.Nop(), API: api}
	if err := s.Start("127.0.0.1:0"); err != nil {
		b.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	base := "http://" + s.Addr().String()
	mid := n / 2
	day := history.SyntheticStart.Add(time.Duration(mid) * 10 * time.Millisecond)
	q := func(v url.Values) string { return v.Encode() }
	pages := []struct{ name, path string }{
		{"page_html", "/ui/"},
		{"page_script", "/ui/app.js"},
		{"search_control_id", "/api/v1/messages?" + q(url.Values{"control_id": {fmt.Sprintf("CTL%08d", mid)}})},
		{"search_mrn", "/api/v1/messages?" + q(url.Values{"key.mrn": {fmt.Sprintf("MRN%07d", mid%200_000)}})},
		{"search_type_day_status", "/api/v1/messages?" + q(url.Values{"type": {"ORU"}, "status": {"dead_lettered"},
			"from": {day.Format(time.RFC3339)}, "to": {day.Add(24 * time.Hour).Format(time.RFC3339)}, "limit": {"50"}})},
		{"search_newest", "/api/v1/messages?limit=50"},
		{"dlq", "/api/v1/dlq?limit=100"},
		{"audit", "/api/v1/audit?limit=100"},
	}
	get := func(path string) time.Duration {
		req, _ := http.NewRequest("GET", base+path, nil)
		req.Header.Set("Authorization", "Bearer operator-token-0123456789")
		t0 := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("%s: %s", path, resp.Status)
		}
		return time.Since(t0)
	}
	b.ResetTimer()
	for range b.N {
		for _, p := range pages {
			b.ReportMetric(float64(get(p.path).Microseconds())/1000, p.name+"_ms")
		}
	}
}
