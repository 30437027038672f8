package config_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hl7broker/hl7broker/config"
	"github.com/hl7broker/hl7broker/delivery"
	"github.com/hl7broker/hl7broker/ingest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeConfig(t *testing.T, yaml string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "hl7broker.yaml")
	require.NoError(t, os.WriteFile(f, []byte(yaml), 0o644))
	return f
}

func TestExampleConfigLoads(t *testing.T) {
	c, err := config.Load("../examples/hl7broker.yaml")
	require.NoError(t, err)
	assert.Equal(t, "fsync", c.NATS.Durability)
	assert.Equal(t, 168*time.Hour, c.NATS.History)
	assert.Equal(t, 2*time.Minute, c.NATS.DuplicateWindow)
	assert.Equal(t, 5*time.Second, c.NATS.StoreTimeout, "default")
	require.Len(t, c.Listeners, 2)
	assert.Equal(t, []string{"ADT"}, c.Listeners[0].AcceptTypes)
	assert.Equal(t, config.DefaultMaxMessageBytes, c.Listeners[1].MaxMessageBytes, "default")
	assert.Equal(t, "auto", c.Listeners[1].AckMode, "default")
	assert.Equal(t, []time.Duration{time.Second, 5 * time.Second, 30 * time.Second, 2 * time.Minute}, c.Destinations[0].Retry.Backoff)
	assert.Equal(t, []string{"emr", "archive"}, c.Routes[1].To)
	assert.Equal(t, "MSH-5", c.Routes[1].Transform[0].Raw()["set"])
	assert.Equal(t, "fifo", c.Destinations[1].Ordering, "default")
}

func TestEnvironmentOverrides(t *testing.T) {
	t.Setenv("HL7BROKER_NATS_URL", "nats://a:4222,nats://b:4222")
	t.Setenv("HL7BROKER_NATS_REPLICAS", "3")
	t.Setenv("HL7BROKER_NATS_DURABILITY", "os")
	t.Setenv("HL7BROKER_DATA_DIR", "/var/lib/hl7broker")
	c, err := config.Load("../examples/hl7broker.yaml")
	require.NoError(t, err)
	assert.Equal(t, "nats://a:4222,nats://b:4222", c.NATS.URL)
	assert.Equal(t, 3, c.NATS.Replicas)
	assert.Equal(t, "os", c.NATS.Durability)
	assert.Equal(t, "/var/lib/hl7broker", c.DataDir)
}

func TestConfigProblemsAreAllReported(t *testing.T) {
	f := writeConfig(t, `
nats:
  durability: sometimes
  history: 1h
  duplicate_window: 2h
admin: {addr: "localhost"}
listeners:
  - {name: adt, addr: 127.0.0.1:2575, ack_mode: loud, accept_types: [adt]}
  - {name: adt, addr: 127.0.0.1:2575}
  - {name: "Lab Results", addr: "127.0.0.1:99999"}
routes:
  - name: r1
    from: [adt, nowhere]
    when: {type: [ADT], event: [A01]}
    transform: [{set: "MSH-2", value: x}, {set: "pid-5", value: x}]
    to: [emr, missing]
  - {name: r2, to: []}
unrouted: {to: ghost}
destinations:
  - {name: emr, type: mllp, addr: "no-port", retry: {backoff: [0s]}}
  - {name: web, type: http, url: "ftp://x"}
  - {name: keyed, type: file, dir: /tmp/x, ordering: key, partition_by: "", partitions: 1}
  - {name: odd, type: carrier-pigeon, on_reject: ignore}
  - {name: plain, type: file, dir: /tmp/y, json_names: true}
`)
	ce, got := loadProblems(t, f)
	for _, key := range []string{
		"nats.durability", "nats.duplicate_window", "admin.addr",
		"listeners[0].ack_mode", "listeners[0].accept_types[0]", "listeners[1].name", "listeners[1].addr",
		"listeners[2].name", "listeners[2].addr",
		"routes[0].from[1]", "routes[0].transform[0].set", "routes[0].transform[1].set", "routes[0].to[1]",
		"routes[1].to", "unrouted.to",
		"destinations[0].addr", "destinations[0].retry.backoff[0]", "destinations[1].url",
		"destinations[2].partition_by", "destinations[2].partitions", "destinations[3].type", "destinations[3].on_reject",
		"destinations[4].json_names",
	} {
		assert.Contains(t, got, key, "no problem reported at %s", key)
	}
	assert.Len(t, ce.Problems, 23, "one problem per mistake:\n%s", ce.Error())
	assert.Contains(t, got["routes[0].to[1]"], `no destination is named "missing"`)
	assert.Contains(t, got["listeners[1].name"], "used twice")
}

// loadProblems loads a config that must fail and returns its problems by key.
func loadProblems(t *testing.T, file string) (*config.Error, map[string]string) {
	t.Helper()
	_, err := config.Load(file)
	var ce *config.Error
	require.ErrorAs(t, err, &ce)
	got := map[string]string{}
	for _, p := range ce.Problems {
		got[p.Key] = p.Message
	}
	return ce, got
}

func TestUnknownKeysAndBadDurations(t *testing.T) {
	for yaml, key := range map[string]string{
		"listeners: [{name: a, addr: '127.0.0.1:1', colour: red}]":              "colour",
		"nats: {histroy: 1h}\nlisteners: [{name: a, addr: '127.0.0.1:1'}]":      "histroy",
		"nats: {history: forever}\nlisteners: [{name: a, addr: '127.0.0.1:1'}]": "nats.history",
	} {
		_, err := config.Load(writeConfig(t, yaml))
		var ce *config.Error
		require.ErrorAs(t, err, &ce, yaml)
		assert.Contains(t, ce.Error(), key)
	}
	_, err := config.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	assert.Error(t, err)
}

func TestTransformsInConfig(t *testing.T) {
	f := writeConfig(t, `
listeners: [{name: adt, addr: "127.0.0.1:0"}]
destinations: [{name: emr, type: file, dir: /tmp/x}]
routes:
  - name: r1
    to: [emr]
    transform:
      - {map: PV1-3.4, csv: facilities.csv}
      - {clear: PID-13, pattern: x}
      - {replace: PID-13, pattern: "(", with: ""}
`)
	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(f), "facilities.csv"), []byte("MCM,MAIN\n"), 0o644))
	ce, got := loadProblems(t, f)
	assert.Len(t, got, 2, "the csv beside the config file is found:\n%s", ce.Error())
	assert.Contains(t, got["routes[0].transform[1].pattern"], "clear does not take pattern")
	assert.Contains(t, got["routes[0].transform[2].pattern"], "not a valid regular expression")

	ce, _ = loadProblems(t, writeConfig(t, "listeners: [{name: a, addr: '127.0.0.1:1'}]\nroutes: [{name: r, to: [d], transform: [{sett: PID-5}]}]\ndestinations: [{name: d, type: file, dir: /tmp/x}]"))
	assert.Contains(t, ce.Error(), "sett", "an unknown step key is named")
}

func TestConditionsInConfig(t *testing.T) {
	f := writeConfig(t, `
listeners:
  - {name: adt, addr: "127.0.0.1:0", accept_types: [ADT]}
  - {name: lab, addr: "127.0.0.1:0"}
destinations: [{name: d, type: file, dir: /tmp/x}]
routes:
  - name: finals
    when:
      type: ORU
      all:
        - {field: OBX-11, equals: F, over: all}
        - not: {field: PID-3.4, in: [TEST]}
      any:
        - {sending_facility: LABFAC}
        - {field: MSH-4, prefix: LAB}
    to: [d]
`)
	c, err := config.Load(f)
	require.NoError(t, err)
	assert.Equal(t, []string{"ORU"}, c.Routes[0].When.Type, "a single type may be written without a list")
	require.Len(t, c.Routes[0].When.All, 2)
	assert.Equal(t, "all", c.Routes[0].When.All[0].Over)
	require.NotNil(t, c.Routes[0].When.All[1].Not)
	assert.Equal(t, []string{"TEST"}, c.Routes[0].When.All[1].Not.In)

	ce, got := loadProblems(t, writeConfig(t, `
listeners: [{name: adt, addr: "127.0.0.1:0", accept_types: [ADT]}]
destinations: [{name: d, type: file, dir: /tmp/x}]
routes:
  - {name: impossible, from: [adt], when: {type: ORU}, to: [d]}
  - {name: bad, when: {listener: [lab], all: [{field: PID-5, equals: a, prefix: b}]}, to: [d]}
`))
	assert.Contains(t, got["routes[0]"], "can never match", ce.Error())
	assert.Contains(t, got["routes[1].when.listener[0]"], `no listener or source is named "lab"`)
	assert.Contains(t, got, "routes[1].when.all[0].field")

	_, got = loadProblems(t, writeConfig(t, `
listeners: [{name: adt, addr: "127.0.0.1:0", colour: red}]
routes: [{name: r, to: [d], when: {any: [{field: PID-7, gt: x}]}}]
`))
	assert.Contains(t, got["routes[0].when.any[0].gt"], "cannot parse", "each decoding problem has its key")
	assert.Equal(t, "unknown key", got["listeners[0].colour"])
}

func TestProblemsSayLineAndColumn(t *testing.T) {
	yaml := "listeners:\n  - name: adt\n    addr: 127.0.0.1:2575\n    ack_mode: loud\nroutes:\n  - name: r\n    to: [emr, missing]\n" +
		"    transform:\n      - {clear: PID-13, pattern: x}\ndestinations:\n  - {name: emr, type: file, dir: /tmp/x, ordering: key}\n"
	lines := strings.Split(yaml, "\n")
	where := func(line int, word string) [2]int { return [2]int{line, strings.Index(lines[line-1], word) + 1} }
	ce, _ := loadProblems(t, writeConfig(t, yaml))
	at := map[string][2]int{}
	for _, p := range ce.Problems {
		at[p.Key] = [2]int{p.Line, p.Column}
	}
	assert.Equal(t, where(4, "ack_mode"), at["listeners[0].ack_mode"])
	assert.Equal(t, where(7, "missing"), at["routes[0].to[1]"])
	assert.Equal(t, where(9, "pattern"), at["routes[0].transform[0].pattern"])
	assert.Equal(t, where(11, "{"), at["destinations[0].partition_by"], "a key not written points at its parent")
	assert.Contains(t, ce.Error(), fmt.Sprintf("line 7:%d: routes[0].to[1]: ", where(7, "missing")[1]))
}

// Inline map tables keep their keys as written: viper lowercases every
// key it reads, so {M: male} never matched M and, with on_miss: reject,
// every message was dead-lettered.
func TestInlineMapTableKeepsKeyCase(t *testing.T) {
	f := writeConfig(t, `listeners: [{name: adt, addr: "127.0.0.1:0"}]
routes:
  - name: sex
    transform:
      - {map: PID-8, table: {M: male, F: female, Unk: unknown}, on_miss: reject}
    to: [emr]
destinations:
  - {name: emr, type: http, url: "http://ehr.example/in", headers: {X-Api-Key: k}}
`)
	c, err := config.Load(f)
	require.NoError(t, err)
	assert.Equal(t, map[string]any{"M": "male", "F": "female", "Unk": "unknown"}, c.Routes[0].Transform[0].Raw()["table"], "keys as written")
	assert.Equal(t, map[string]string{"X-Api-Key": "k"}, config.OptionsOf[delivery.HTTPOptions](c.Destinations[0]).Headers)
	p, problems := c.Pipeline(0)
	require.Empty(t, problems)
	out, err := p.Apply([]byte("MSH|^~\\&|A|B|C|D|20260101||ADT^A01|1|P|2.5\rPID|1||X||Doe^J||19700101|M\r"))
	require.NoError(t, err, "M is in the table")
	assert.Contains(t, string(out), "|male")
}

// check reports every problem in one run: a value that cannot be decoded
// no longer hides a route to an unknown destination, and a bad
// indentation is reported on its own line, not where its block starts.
func TestConfigReportsEveryProblemAtOnce(t *testing.T) {
	f := writeConfig(t, `listeners:
  - {name: adt, addr: "127.0.0.1:0", max_connections: lots}
routes:
  - {name: r, to: [nowhere]}
`)
	_, err := config.Load(f)
	var ce *config.Error
	require.ErrorAs(t, err, &ce)
	var keys []string
	for _, p := range ce.Problems {
		keys = append(keys, p.Key)
	}
	assert.ElementsMatch(t, []string{"listeners[0].max_connections", "routes[0].to[0]"}, keys)

	f = writeConfig(t, "listeners:\n  - name: adt\n   addr: \"127.0.0.1:2575\"\nroutes: []\n")
	_, err = config.Load(f)
	require.ErrorAs(t, err, &ce)
	require.Len(t, ce.Problems, 1)
	assert.Equal(t, 3, ce.Problems[0].Line, "the line with the bad indentation: %s", ce.Problems[0])
	assert.Contains(t, ce.Problems[0].Message, "not valid YAML")
}

// A destination's keys that belong to another type are refused, and an
// unknown type names the types there are.
func TestDestinationKeysOfAnotherTypeAreRefused(t *testing.T) {
	_, err := config.Load(writeConfig(t, `listeners: [{name: a, addr: "127.0.0.1:0"}]
routes: [{name: r, to: [emr, web, disk, odd]}]
destinations:
  - {name: emr, type: mllp, addr: "127.0.0.1:3575", url: "http://x/in", dir: /tmp/x}
  - {name: web, type: http, url: "http://x/in", addr: "127.0.0.1:1"}
  - {name: disk, type: file, dir: /tmp/x, headers: {A: b}, content_type: text/plain}
  - {name: odd, type: pigeon}
`))
	var ce *config.Error
	require.ErrorAs(t, err, &ce)
	got := map[string]string{}
	for _, p := range ce.Problems {
		got[p.Key] = p.Message
	}
	assert.Equal(t, "is not a key of type mllp destinations", got["destinations[0].url"])
	assert.Equal(t, "is not a key of type mllp destinations", got["destinations[0].dir"])
	assert.Equal(t, "is not a key of type http destinations", got["destinations[1].addr"])
	assert.Equal(t, "is not a key of type file destinations", got["destinations[2].headers"])
	assert.Equal(t, "is not a key of type file destinations", got["destinations[2].content_type"])
	assert.Equal(t, `"pigeon" is not one of email, fhir, file, http, mllp, mysql, postgres, sftp`, got["destinations[3].type"])
	assert.Len(t, ce.Problems, 6)
}

// A postgres destination's problems are named before it runs: a password
// written out (in the url or as password), no key column, a bad path,
// table or zone. No password is printed.
func TestPostgresDestinationChecks(t *testing.T) {
	_, got := loadProblems(t, writeConfig(t, `listeners: [{name: a, addr: "127.0.0.1:0"}]
routes: [{name: r, to: [d0, d1, d2, d3, d4, d5]}]
destinations:
  - {name: d0, type: postgres, url: "postgres://hl7:hunter2@db/emr", password: hunter2, table: obs, columns: {id: $message_id}}
  - {name: d1, type: postgres, url: "mysql://db/emr", table: "obs; drop table x", columns: {mrn: PID-3.1}}
  - {name: d2, type: postgres, url: "postgres://db/emr", table: s.obs, columns: {id: $message_id, x: PID3, y: $patient}}
  - {name: d3, type: postgres, url: "postgres://db/emr", table: obs, row_per: OBX, columns: {id: $message_id}}
  - {name: d4, type: postgres, url: "postgres://db/emr", table: obs, time_zone: Mars/Olympus, columns: {id: $message_id}}
  - {name: d5, type: postgres, url: "postgres://db/emr", password: "${env:HL7BROKER_TEST_UNSET_PG}", table: obs, columns: {id: $message_id, mrn: "PID-3.1", at: "OBX-14"}}
`))
	assert.Contains(t, got["destinations[0].url"], "holds a password")
	assert.Contains(t, got["destinations[0].password"], "by reference")
	assert.Contains(t, got["destinations[1].url"], "not a postgres:// URL")
	assert.Contains(t, got["destinations[1].table"], "not a table name")
	assert.Contains(t, got["destinations[1].columns"], "exactly one column to $message_id")
	assert.Contains(t, got["destinations[2].columns.x"], "field number")
	assert.Contains(t, got["destinations[2].columns.y"], "is not one of")
	assert.Contains(t, got["destinations[3].columns"], "exactly one column to $row")
	assert.Contains(t, got["destinations[4].time_zone"], "not a time zone")
	assert.Contains(t, got["destinations[5].password"], "HL7BROKER_TEST_UNSET_PG is not set")
	for k, m := range got {
		assert.NotContains(t, m, "hunter2", k)
	}
}

// SFTP sources and destinations name what they miss to log in, refuse a
// written password and a file_name that would overwrite, and need local
// folders with move_to: local.
func TestSFTPChecks(t *testing.T) {
	_, got := loadProblems(t, writeConfig(t, `sources:
  - {name: s0, type: sftp, addr: "sftp.example:22", dir: /out, password: hunter2}
  - {name: s1, type: sftp, addr: "sftp.example", user: hl7, private_key_file: /k, dir: /out, move_to: local}
  - {name: s2, type: sftp, addr: "sftp.example:22", user: hl7, private_key_file: /k, move_to: elsewhere}
routes: [{name: r, to: [d0, d1]}]
destinations:
  - {name: d0, type: sftp, addr: "emr.example:22", user: hl7, dir: /in}
  - {name: d1, type: sftp, addr: "emr.example:22", user: hl7, password: "${env:HOME}", dir: /in, file_name: "{control_id}.hl7"}
`))
	assert.Contains(t, got["sources[0].user"], "the user to log in as")
	assert.Contains(t, got["sources[0].password"], "by reference")
	assert.Contains(t, got["sources[1].addr"], "HOST:PORT")
	assert.Contains(t, got["sources[1]"], "give done_dir and error_dir")
	assert.Contains(t, got["sources[2].move_to"], "server")
	assert.Contains(t, got["sources[2].dir"], "an sftp source needs the folder it watches")
	assert.Contains(t, got["destinations[0]"], "give private_key_file or password")
	assert.Contains(t, got["destinations[1].file_name"], "must hold {seq} or {message_id}")
	for k, m := range got {
		assert.NotContains(t, m, "hunter2", k)
	}
}

// Every default of a listener and a destination comes from the one table.
func TestEntryDefaults(t *testing.T) {
	c := &config.Config{Listeners: []config.ListenerConfig{{Name: "a"}}, Destinations: []config.DestinationConfig{{Name: "d", Type: "http"}, {Name: "e", Type: "mllp", Ordering: "key", Timeout: time.Second}}}
	c.ApplyDefaults()
	assert.Equal(t, "auto", c.Listeners[0].AckMode)
	assert.Equal(t, config.DefaultMaxMessageBytes, c.Listeners[0].MaxMessageBytes)
	d := c.Destinations[0]
	assert.Equal(t, []any{"fifo", "dead_letter", config.RetryForever, "er7", 30 * time.Second, "x-application/hl7-v2+er7"},
		[]any{d.Ordering, d.OnReject, d.Retry.MaxAttempts, d.Encoding, d.Timeout, config.OptionsOf[delivery.HTTPOptions](d).ContentType})
	assert.Equal(t, config.DefaultBackoff, d.Retry.Backoff)
	assert.Equal(t, "key", c.Destinations[1].Ordering, "a value given is kept")
	assert.Equal(t, time.Second, c.Destinations[1].Timeout)
	assert.IsType(t, &delivery.MLLPOptions{}, c.Destinations[1].Options, "each destination has its own type's keys")
}

// retry.max_attempts: 0 written out means until delivered; left out, an
// ordered destination holds its line until delivered and a parallel one
// gives up after DefaultMaxAttempts; a negative count is a problem.
func TestRetryUntilDelivered(t *testing.T) {
	c, err := config.Load(writeConfig(t, `
listeners: [{name: in, addr: "127.0.0.1:0"}]
routes: [{name: r, to: [a, b, c, d]}]
destinations:
  - {name: a, type: file, dir: /tmp/a, retry: {max_attempts: 0}, ordering: parallel, concurrency: 4}
  - {name: b, type: file, dir: /tmp/b}
  - {name: c, type: file, dir: /tmp/c, ordering: parallel, concurrency: 4}
  - {name: d, type: file, dir: /tmp/d, retry: {max_attempts: 3}}
`))
	require.NoError(t, err)
	got := []int{}
	for _, d := range c.Destinations {
		got = append(got, d.Retry.MaxAttempts)
	}
	assert.Equal(t, []int{config.RetryForever, config.RetryForever, config.DefaultMaxAttempts, 3}, got)

	_, problems := loadProblems(t, writeConfig(t, `
listeners: [{name: in, addr: "127.0.0.1:0"}]
routes: [{name: r, to: [a]}]
destinations: [{name: a, type: file, dir: /tmp/a, retry: {max_attempts: -2}}]
`))
	assert.Contains(t, problems["destinations[0].retry.max_attempts"], "0 (until delivered)")
}

// An optional token whose file is missing is no problem (the broker
// leaves it out with a warning); a required one is.
func TestOptionalTokenMayBeMissing(t *testing.T) {
	base := `
listeners: [{name: in, addr: "127.0.0.1:0"}]
routes: [{name: r, to: [a]}]
destinations: [{name: a, type: file, dir: /tmp/a}]
admin:
  tokens: [{name: alice, role: operator, token_file: nowhere.token%s}]
`
	_, err := config.Load(writeConfig(t, fmt.Sprintf(base, ", optional: true")))
	require.NoError(t, err)
	_, problems := loadProblems(t, writeConfig(t, fmt.Sprintf(base, "")))
	assert.Contains(t, problems["admin.tokens[0]"], "no such file")
}

// An admin address beyond loopback without TLS passes check with a
// warning naming the key; on loopback, or with TLS, there is none.
func TestAdminBeyondLoopbackWithoutTLSIsWarned(t *testing.T) {
	for addr, warned := range map[string]bool{"0.0.0.0:8080": true, ":8080": true, "10.1.2.3:8080": true,
		"127.0.0.1:8080": false, "localhost:8080": false, "[::1]:8080": false} {
		c := &config.Config{Admin: config.AdminConfig{Addr: addr}}
		w := c.Warnings()
		if !warned {
			assert.Empty(t, w, addr)
			continue
		}
		require.Len(t, w, 1, addr)
		assert.Equal(t, "admin.addr", w[0].Key)
		assert.Contains(t, w[0].Message, "without TLS")
		c.Admin.TLS.CertFile = "server.pem"
		assert.Empty(t, c.Warnings(), "%s with TLS", addr)
	}
}

// A listener is bounded by default (10,000 connections, idle 1 h);
// idle_timeout: 0 written out keeps connections for ever; the frames'
// memory is bounded (128 MiB) and an HTTP source's requests (8).
func TestSenderLimitsHaveDefaults(t *testing.T) {
	t.Setenv("HL7B_TEST_WEB_TOKEN", "a-token-of-sixteen-or-more")
	c, err := config.Load(writeConfig(t, `
listeners: [{name: a, addr: "127.0.0.1:0"}, {name: b, addr: "127.0.0.1:1", idle_timeout: 0}]
sources: [{name: web, type: http, addr: "127.0.0.1:0", tokens: [{name: x, token_env: HL7B_TEST_WEB_TOKEN}]}]
routes: [{name: r, to: [d]}]
destinations: [{name: d, type: file, dir: /tmp/d}]
`))
	require.NoError(t, err)
	assert.Equal(t, config.DefaultMaxConnections, c.Listeners[0].MaxConnections)
	assert.Equal(t, config.DefaultIdleTimeout, c.Listeners[0].IdleTimeout)
	assert.Equal(t, time.Duration(config.NoTimeout), c.Listeners[1].IdleTimeout, "0 written out: none")
	assert.EqualValues(t, config.DefaultFramesMemory, c.Limits.FramesMemory)
	assert.Equal(t, 8, config.SourceOptionsOf[ingest.HTTPOptions](c.Sources[0]).MaxRequests)
}

func TestMemoryLimitIsASizeAutoOrOff(t *testing.T) {
	for _, ok := range []string{"auto", "off", "512MiB", "1GiB"} {
		_, err := config.Load(writeConfig(t, "memory_limit: "+ok+"\nlisteners: [{name: a, addr: '127.0.0.1:0'}]"))
		assert.NoError(t, err, ok)
	}
	_, got := loadProblems(t, writeConfig(t, "memory_limit: lots\nlisteners: [{name: a, addr: '127.0.0.1:0'}]"))
	assert.Contains(t, got["memory_limit"], "not a size such as 512MiB")
	_, got = loadProblems(t, writeConfig(t, "memory_limit: 16MiB\nlisteners: [{name: a, addr: '127.0.0.1:0'}]"))
	assert.Contains(t, got["memory_limit"], "below 64 MiB")
}

// A search key is its path, or {path, fold}; a bad path is named by its
// key either way, and an unknown key of the object form is refused.
func TestSearchKeysTakeAPathOrAPathThatFolds(t *testing.T) {
	c, err := config.Load(writeConfig(t, "listeners: [{name: a, addr: '127.0.0.1:1'}]\nhistory:\n  search_keys:\n    mrn: PID-3.1\n    family: {path: PID-5.1, fold: true}\n"))
	require.NoError(t, err)
	assert.Equal(t, config.SearchKey{Path: "PID-3.1"}, c.History.SearchKeys["mrn"])
	assert.Equal(t, config.SearchKey{Path: "PID-5.1", Fold: true}, c.History.SearchKeys["family"])
	paths, folded := c.History.KeyPaths()
	assert.Equal(t, map[string]string{"mrn": "PID-3.1", "family": "PID-5.1"}, paths)
	assert.Equal(t, []string{"family"}, folded)

	_, got := loadProblems(t, writeConfig(t, "listeners: [{name: a, addr: '127.0.0.1:1'}]\nhistory:\n  search_keys:\n    family: {path: 'PID-5.x', fold: true}\n"))
	assert.Contains(t, got, "history.search_keys.family")
	_, got = loadProblems(t, writeConfig(t, "listeners: [{name: a, addr: '127.0.0.1:1'}]\nhistory:\n  search_keys:\n    family: {path: PID-5.1, folds: true}\n"))
	assert.NotEmpty(t, got, "an unknown key is refused")
}

// A token limited to sources and destinations names ones that exist.
func TestTokenScopeNamesWhatExists(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "t"), []byte("secret-token-0123456789\n"), 0o600))
	_, got := loadProblems(t, writeConfig(t, "listeners: [{name: lab, addr: '127.0.0.1:1'}]\nadmin:\n  tokens:\n    - {name: lara, role: operator, token_file: "+filepath.Join(dir, "t")+", sources: [lab, labb], destinations: [emr]}\n"))
	assert.Contains(t, got["admin.tokens[0].sources[1]"], `"labb"`)
	assert.Contains(t, got["admin.tokens[0].destinations[0]"], `"emr"`)
	assert.NotContains(t, got, "admin.tokens[0].sources[0]")
}

// Sign-in by OIDC and LDAP: secrets by reference, the callback's path,
// roles that exist, URLs of the right scheme; each problem at its key.
func TestSignInConfigProblems(t *testing.T) {
	_, got := loadProblems(t, writeConfig(t, `listeners: [{name: a, addr: '127.0.0.1:1'}]
admin:
  oidc:
    issuer: login.example.org
    client_id: hl7broker
    client_secret: written-in-clear
    redirect_url: https://broker.example.org/callback
    roles: {analysts: superuser}
    limits: {nobody: {sources: [nowhere]}}
  ldap:
    url: https://dc1.example.org
    user_filter: (uid=alice)
    bind_dn: cn=svc
`))
	for key, want := range map[string]string{
		"admin.oidc.issuer":                   "not an http or https URL",
		"admin.oidc.client_secret":            "by reference",
		"admin.oidc.redirect_url":             "/ui/oidc/callback",
		"admin.oidc.roles.analysts":           "superuser",
		"admin.ldap.url":                      "ldaps://",
		"admin.ldap.user_base":                "subtree",
		"admin.ldap.user_filter":              "{username}",
		"admin.ldap":                          "together",
		"admin.ldap.roles":                    "at least one group",
		"admin.oidc.limits.nobody":            "no role",
		"admin.oidc.limits.nobody.sources[0]": `"nowhere"`,
	} {
		assert.Contains(t, got[key], want, key)
	}
	c, err := config.Load(writeConfig(t, `listeners: [{name: a, addr: '127.0.0.1:1'}]
admin:
  ldap: {url: "ldap://dc1.example.org", user_base: "ou=people,dc=example,dc=org", roles: {lab: viewer}}
`))
	require.NoError(t, err)
	var warned string
	for _, w := range c.Warnings() {
		if w.Key == "admin.ldap.url" {
			warned = w.Message
		}
	}
	assert.Contains(t, warned, "in clear", "plain ldap:// to another machine is valid, with a warning")
}

// A listener's conformance profile must read: a missing file or one that
// is not a profile is a problem at its key.
func TestListenerProfileMustRead(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bad.xml"), []byte("<HL7v2xConformanceProfile/>"), 0o644))
	_, got := loadProblems(t, writeConfig(t, "listeners:\n  - {name: a, addr: '127.0.0.1:1', profile: "+filepath.Join(dir, "none.xml")+"}\n  - {name: b, addr: '127.0.0.1:2', profile: "+filepath.Join(dir, "bad.xml")+"}\n"))
	assert.Contains(t, got["listeners[0].profile"], "no such file")
	assert.Contains(t, got["listeners[1].profile"], "no HL7v2xStaticDef")
}

// Site rules name a field, say what they require, name a table that
// exists and a condition that compiles; each problem at its key.
func TestSiteRulesProblems(t *testing.T) {
	_, got := loadProblems(t, writeConfig(t, `scripts: {tables: {sex: {table: {F: female, M: male}}}}
listeners:
  - name: a
    addr: '127.0.0.1:1'
    rules:
      - {field: PID-x, required: true}
      - {field: PID-8}
      - {field: PID-8, table: sexes}
      - {field: PV1-3, required: true, when: {field: PV1-2, equlas: I}}
      - {field: PID-8, table: sex}
`))
	assert.Contains(t, got, "listeners[0].rules[0].field")
	assert.Contains(t, got["listeners[0].rules[1]"], "required: true, or a table")
	assert.Contains(t, got["listeners[0].rules[2].table"], `no table "sexes"`)
	assert.NotContains(t, got, "listeners[0].rules[4]")
	assert.NotContains(t, got, "listeners[0].rules[4].table")
	found := false
	for k := range got {
		if strings.Contains(k, "equlas") || strings.HasPrefix(k, "listeners[0].rules[3]") {
			found = true
		}
	}
	assert.True(t, found, "the misspelt key of a rule's when is refused: %v", got)
}
