package mirth

import (
	"github.com/hl7broker/hl7broker/config"
	_ "github.com/hl7broker/hl7broker/delivery" // the destination types a config names
	_ "github.com/hl7broker/hl7broker/ingest"   // and the source types
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readTestdata(t testing.TB, names ...string) []*Export {
	t.Helper()
	var out []*Export
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join("testdata", n))
		require.NoError(t, err)
		ex, err := Read(data)
		require.NoError(t, err, n)
		out = append(out, ex)
	}
	return out
}

func TestReadsChannelsListsAndServerConfigurations(t *testing.T) {
	ex := readTestdata(t, "adt-feed.xml", "lab-chain.xml", "server-config.xml")
	require.Len(t, ex[0].Channels, 1)
	c := ex[0].Channels[0]
	assert.Equal(t, "ADT Feed", c.Name)
	assert.Equal(t, "TCP Listener", c.Source.Transport)
	require.Len(t, c.Source.Filter, 2)
	assert.Equal(t, []string{"'A01'", "'A04'", "'A08'"}, c.Source.Filter[1].Values)
	require.Len(t, c.Source.Steps.Steps, 4)
	assert.Equal(t, "mapper", c.Source.Steps.Steps[1].Kind)
	assert.Equal(t, [][2]string{{"'[^0-9]'", "''"}}, c.Source.Steps.Steps[1].Replace)
	assert.Equal(t, `{"mrn": "", "family": "", "given": ""}`, c.Destinations[1].Steps.OutboundTemplate, "base64 templates are decoded")
	assert.Len(t, ex[1].Channels, 2, "a list of channels")
	require.Len(t, ex[2].Libraries, 1, "a server configuration's libraries")
	assert.Equal(t, "FUNCTION", ex[2].Libraries[0].Templates[0].Type)
}

func TestReadRefusesWhatIsNotAnExport(t *testing.T) {
	for _, bad := range []string{"", "not xml", "<a><b></a>", "<html><body/></html>", strings.Repeat("<a>", 1000)} {
		_, err := Read([]byte(bad))
		assert.Error(t, err, bad)
	}
}

func TestTheReportSaysWhatWasTranslatedAndWhatNot(t *testing.T) {
	tr := translate(readTestdata(t, "adt-feed.xml", "lab-chain.xml", "server-config.xml"))
	got := map[string]Item{}
	for _, it := range tr.report.Items {
		got[it.Channel+" | "+it.Part] = it
	}
	for key, want := range map[string]Status{
		"ADT Feed | source (TCP Listener)":                                Different,
		"ADT Feed | destination To EMR (TCP Sender)":                      Translated,
		"ADT Feed | destination Portal JSON (HTTP Sender)":                Different,
		"ADT Feed | destination Portal JSON: filter rule 1 (only adults)": Translated,
		"Lab In | destination To Lab Out (Channel Writer)":                Translated,
		"Lab Out | destination Results DB (Database Writer)":              Different,
		"Orders (legacy) | preprocessing script":                          NotTranslated,
		"Orders (legacy) | source: transformer step 2 (legacy lookup)":    NotTranslated,
		"Orders (legacy) | source: transformer step 3 (xslt)":             NotTranslated,
		"Orders (legacy) | destination Custom (JavaScript Writer)":        NotTranslated,
		" | library Formatting: template formatProvider":                  Translated,
	} {
		it, ok := got[key]
		if assert.True(t, ok, "no item %q", key) {
			assert.Equal(t, want, it.Status, "%s: %s", key, it.Note)
		}
	}
	assert.Contains(t, got["Orders (legacy) | source: transformer step 2 (legacy lookup)"].Note, "XML literal")
	assert.Contains(t, got["Orders (legacy) | source: transformer step 2 (legacy lookup)"].Note, "database call")
	assert.Contains(t, got["Lab Out | destination Results DB (Database Writer)"].Note, "hl7broker_message_id")
	assert.NotContains(t, tr.report.String(), "s3cret", "no secret in the report")
}

func TestRuleBuilderRulesBecomeConditionsOnlyWhenTheMeaningIsKept(t *testing.T) {
	rule := func(field, cond string, values ...string) Rule {
		return Rule{Kind: "rule builder", Field: field, Condition: cond, Values: values}
	}
	w, ok := filterWhen([]Rule{rule("msg['MSH']['MSH.9']['MSH.9.1'].toString()", "EQUALS", "'ADT'")})
	require.True(t, ok)
	assert.Equal(t, "MSH-9.1", w.Field)
	w, ok = filterWhen([]Rule{rule("msg['PID']['PID.8']['PID.8.1'].toString()", "NOT_EQUAL", "'M'", "'F'")})
	require.True(t, ok)
	assert.Equal(t, []string{"M", "F"}, w.Not.In)
	w, ok = filterWhen([]Rule{rule("msg['PV1']['PV1.2']['PV1.2.1'].toString()", "CONTAINS", "'I.'"), {Kind: "rule builder", Operator: "OR", Field: "msg['PV1']['PV1.2']['PV1.2.1'].toString()", Condition: "EXISTS"}})
	require.True(t, ok)
	require.Len(t, w.Any, 2)
	assert.Equal(t, `I\.`, *w.Any[0].Matches)
	for _, r := range []Rule{
		rule("msg['PID']['PID.8'].toString()", "EQUALS", "'M'"),                 // a whole field: its XML in Mirth
		rule("msg['OBX']['OBX.11']['OBX.11.1'].toString()", "EQUALS", "'F'"),    // a repeating segment
		rule("msg['PID']['PID.8']['PID.8.1'].toString()", "EQUALS", "$('sex')"), // not a literal
		{Kind: "javascript", Script: "return true;"},
	} {
		_, ok := filterWhen([]Rule{r})
		assert.False(t, ok, "%+v", r)
	}
}

func TestForEachAndE4XScriptsCompileAfterImport(t *testing.T) {
	tr := translate(readTestdata(t, "adt-feed.xml", "lab-chain.xml"))
	for f, src := range tr.files {
		_, err := mustEngine().Compile(f, 0, src, true)
		assert.NoError(t, err, f)
	}
}

func FuzzRead(f *testing.F) {
	for _, n := range []string{"adt-feed.xml", "lab-chain.xml", "server-config.xml", "orders-http.xml"} {
		data, err := os.ReadFile(filepath.Join("testdata", n))
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte("<channel><sourceConnector/></channel>"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ex, err := Read(data)
		if err != nil {
			return
		}
		translate([]*Export{ex}) // no panic on anything that parses
	})
}

// tcpChannel is a minimal channel export: a TCP Listener on port, to an
// MLLP destination, with an optional old-format (Mirth 3.0 to 3.3) filter.
func tcpChannel(id, name, port, rules string) string {
	return `<channel version="3.2.0"><id>` + id + `</id><name>` + name + `</name>
<sourceConnector><name>sourceConnector</name>
<properties class="com.mirth.connect.connectors.tcp.TcpReceiverProperties"><listenerConnectorProperties><host>0.0.0.0</host><port>` + port + `</port></listenerConnectorProperties></properties>
<filter>` + rules + `</filter><transportName>TCP Listener</transportName><enabled>true</enabled></sourceConnector>
<destinationConnectors><connector><name>out</name>
<properties class="com.mirth.connect.connectors.tcp.TcpDispatcherProperties"><remoteAddress>${EMR_HOST}</remoteAddress><remotePort>6662</remotePort><template>${message.encodedData}</template></properties>
<transportName>TCP Sender</transportName><enabled>true</enabled></connector></destinationConnectors></channel>`
}

func TestConfigurationMapFillsSettingsAndWhatItCannotFillIsReported(t *testing.T) {
	read := func(s string) *Export {
		ex, err := Read([]byte(s))
		require.NoError(t, err)
		return ex
	}
	cfgMap := read(`<map><entry><string>ADT_PORT</string><com.mirth.connect.util.ConfigurationProperty><value>6661</value><comment>adt</comment></com.mirth.connect.util.ConfigurationProperty></entry>
<entry><string>EMR_HOST</string><com.mirth.connect.util.ConfigurationProperty><value>emr.example.org</value></com.mirth.connect.util.ConfigurationProperty></entry></map>`)
	tr := translate([]*Export{cfgMap,
		read(tcpChannel("1", "ADT", "${ADT_PORT}", "")),
		read(tcpChannel("2", "ADT copy", "${ADT_PORT}", "")),
		read(tcpChannel("3", "Unset", "${NOPE}", "")),
		read(tcpChannel("4", "Old", "7001", `<rules><rule><sequenceNumber>0</sequenceNumber><name>old rule</name><type>Rule Builder</type><script></script><operator>NONE</operator></rule></rules>`)),
	})
	require.Len(t, tr.cfg.Listeners, 2)
	assert.Equal(t, "0.0.0.0:6661", tr.cfg.Listeners[0].Addr, "${ADT_PORT} from the configuration map")
	assert.Equal(t, "emr.example.org:6662", tr.cfg.Destinations[0].Addr)
	assert.Equal(t, map[string]string{"ADT_PORT": "6661", "EMR_HOST": "emr.example.org"}, tr.cfg.Scripts.Configuration, "and $cfg sees it")
	got := map[string]Item{}
	for _, it := range tr.report.Items {
		got[it.Channel+" | "+it.Part] = it
	}
	assert.Equal(t, NotTranslated, got["ADT copy | source (TCP Listener)"].Status)
	assert.Contains(t, got["ADT copy | source (TCP Listener)"].Note, "also listens on 0.0.0.0:6661")
	assert.Equal(t, NotTranslated, got["Unset | source (TCP Listener)"].Status)
	assert.Contains(t, got["Unset | source (TCP Listener)"].Note, `"${NOPE}"`)
	assert.Equal(t, NotTranslated, got["Old | source: filter rule 1 (old rule)"].Status)
	assert.Contains(t, tr.files["scripts/old/source-filter.js"], "throw new Error", "an untranslated rule dead-letters, never filters silently")
}

// An SMTP Sender becomes an email destination: server, login (its password
// a secret file), sender and fixed recipients; a recipient Mirth filled
// per message and Mirth's ${…} in the subject are named in the report;
// the config passes check.
func TestSMTPSenderBecomesAnEmailDestination(t *testing.T) {
	ex, err := Read([]byte(`<channel version="4.5.0"><id>9</id><name>Results by mail</name>
<sourceConnector><name>sourceConnector</name>
<properties class="com.mirth.connect.connectors.tcp.TcpReceiverProperties"><listenerConnectorProperties><host>0.0.0.0</host><port>6670</port></listenerConnectorProperties></properties>
<transportName>TCP Listener</transportName><enabled>true</enabled></sourceConnector>
<destinationConnectors><connector><name>mail practice</name>
<properties class="com.mirth.connect.connectors.smtp.SmtpDispatcherProperties"><smtpHost>smtp.example.org</smtpHost><smtpPort>587</smtpPort>
<encryption>TLS</encryption><authentication>true</authentication><username>mirth</username><password>s3cret</password>
<to>results@example.org, ${practiceEmail}</to><from>mirth@example.org</from><subject>Result ${message.messageId}</subject><body>See attached.</body><html>false</html></properties>
<transportName>SMTP Sender</transportName><enabled>true</enabled></connector></destinationConnectors></channel>`))
	require.NoError(t, err)
	tr := translate([]*Export{ex})
	require.Len(t, tr.cfg.Destinations, 1)
	d := tr.cfg.Destinations[0]
	assert.Equal(t, "email", d.Type)
	require.NotNil(t, d.SMTP)
	assert.Equal(t, "smtp.example.org:587", d.SMTP.Addr)
	assert.Nil(t, d.SMTP.StartTLS, "STARTTLS, the default")
	assert.Equal(t, "mirth", d.SMTP.Username)
	assert.NotContains(t, d.SMTP.Password, "s3cret", "the password goes to a secret file")
	assert.Equal(t, []string{"results@example.org"}, d.To)
	var note string
	for _, it := range tr.report.Items {
		if strings.Contains(it.Part, "mail practice") {
			note = it.Note
			assert.Equal(t, Different, it.Status)
		}
	}
	assert.Contains(t, note, `recipient "${practiceEmail}" was filled per message`)
	assert.Contains(t, note, "the subject's ${…} variables are kept as text")

	res, err := Import([]*Export{ex}, t.TempDir())
	require.NoError(t, err)
	_, err = config.Load(res.Config)
	assert.NoError(t, err, "the written config passes check")
}

// A Database Writer to MySQL (or MariaDB) becomes a mysql destination, as
// one to PostgreSQL becomes a postgres one; backquoted names are read.
func TestDatabaseWriterToMySQLBecomesAMySQLDestination(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "lab-chain.xml"))
	require.NoError(t, err)
	s := strings.Replace(string(data), "jdbc:postgresql://db.example.org:5432/results", "jdbc:mysql://db.example.org:3306/results", 1)
	s = strings.Replace(s, "INSERT INTO lab_results (mrn, order_number, message)", "INSERT INTO `lab_results` (`mrn`, `order_number`, `message`)", 1)
	ex, err := Read([]byte(s))
	require.NoError(t, err)
	tr := translate([]*Export{ex})
	var found bool
	for _, d := range tr.cfg.Destinations {
		if d.Table == "lab_results" {
			found = true
			assert.Equal(t, "mysql", d.Type)
			assert.Equal(t, "mysql://mirth@db.example.org:3306/results", d.URL)
			assert.Contains(t, d.Columns, "order_number")
			assert.Equal(t, "$message_id", d.Columns["hl7broker_message_id"])
		}
	}
	assert.True(t, found, "the Database Writer is translated")
	res, err := Import([]*Export{ex}, t.TempDir())
	require.NoError(t, err)
	_, err = config.Load(res.Config)
	assert.NoError(t, err, "the written config passes check")
}
