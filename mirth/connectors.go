package mirth

import (
	"cmp"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
)

// sourceOf translates c's source connector into a listener or source
// named after the channel, returning its name.
func (t *translator) sourceOf(c *Channel) (string, bool) {
	s, name := c.Source, t.slugs[c]
	if s == nil {
		t.report.add(c.Name, "source", NotTranslated, "the channel has no source connector")
		return "", false
	}
	part := "source (" + s.Transport + ")"
	if dt := s.Steps.InboundType; dt != "" && dt != "HL7V2" {
		t.report.add(c.Name, part, NotTranslated, "its inbound data type is %s: hl7broker's sources take HL7 v2", dt)
		return "", false
	}
	p := s.Props
	switch {
	case strings.Contains(s.Class, "TcpReceiverProperties"):
		if p.str("serverMode") == "false" {
			t.report.add(c.Name, part, NotTranslated, "it connects out to the sender (client mode); hl7broker listens")
			return "", false
		}
		host, port := hostOr(p.str("listenerConnectorProperties", "host")), p.str("listenerConnectorProperties", "port")
		if !t.settings(c, part, []string{"host", "port"}, &host, &port) {
			return "", false
		}
		addr := net.JoinHostPort(host, port)
		if !t.listen(c, part, addr, "channel "+c.Name) {
			return "", false
		}
		t.cfg.Listeners = append(t.cfg.Listeners, outListener{Name: name, Addr: addr})
		var diffs []string
		if mode := p.str("transmissionModeProperties", "pluginPointName"); mode != "" && mode != "MLLP" {
			diffs = append(diffs, "its framing is "+mode+"; the listener speaks MLLP")
		}
		switch rv := p.str("sourceConnectorProperties", "responseVariable"); {
		case rv == "" || strings.HasPrefix(rv, "Auto-generate (After source transformer)") || strings.HasPrefix(rv, "Auto-generate (Before processing)"):
			diffs = append(diffs, "the sender gets its ACK once the message is stored, before any filter or transformer runs")
		case rv == "None":
			diffs = append(diffs, "Mirth sent no response; the listener always ACKs (AA once stored)")
		default:
			diffs = append(diffs, "Mirth answered with "+rv+"; the listener ACKs once the message is stored, never with a downstream's answer")
		}
		t.report.add(c.Name, part, Different, "listener %s on %s; %s", name, addr, strings.Join(diffs, "; "))
	case strings.Contains(s.Class, "HttpReceiverProperties"):
		host, port := hostOr(p.str("listenerConnectorProperties", "host")), p.str("listenerConnectorProperties", "port")
		if !t.settings(c, part, []string{"host", "port"}, &host, &port) {
			return "", false
		}
		addr := net.JoinHostPort(host, port)
		if !t.listen(c, part, addr, "channel "+c.Name) {
			return "", false
		}
		path, _ := t.resolve(p.str("contextPath"))
		if path == "" {
			path = "/"
		} else if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		tok := "secrets/" + name + ".token"
		t.secrets[tok] = newToken()
		t.cfg.Sources = append(t.cfg.Sources, outSource{Name: name, Type: "http", Addr: addr, Path: path, Tokens: []outToken{{Name: "sender", TokenFile: tok}}})
		t.report.add(c.Name, part, Different, "http source %s on %s%s; senders must now show the bearer token in %s", name, addr, path, tok)
	case strings.Contains(s.Class, "FileReceiverProperties"):
		return t.fileSource(c, part, name)
	case strings.Contains(s.Class, "VmReceiverProperties"):
		dir := "channels/" + name
		t.cfg.Sources = append(t.cfg.Sources, outSource{Name: name, Type: "file", Dir: dir})
		t.report.add(c.Name, part, Different, "a folder source %s (%s) stands in for the Channel Reader, so that route test and files can feed it; the channels that wrote to it route straight to its destinations", name, dir)
	default:
		t.report.add(c.Name, part, NotTranslated, "no hl7broker source does what a %s does", s.Transport)
		return "", false
	}
	return name, true
}

func hostOr(h string) string {
	if h == "" {
		return "0.0.0.0"
	}
	return h
}

func (t *translator) fileSource(c *Channel, part, name string) (string, bool) {
	p := c.Source.Props
	src := outSource{Name: name, Dir: p.str("host"), Recursive: p.flag("directoryRecursion"), Poll: millis(p.str("pollConnectorProperties", "pollingFrequency"))}
	if !t.settings(c, part, []string{"folder"}, &src.Dir) {
		return "", false
	}
	var diffs []string
	switch scheme := strings.ToUpper(p.str("scheme")); scheme {
	case "", "FILE":
		src.Type = "file"
	case "SFTP":
		src.Type = "sftp"
		host, dir := splitRemote(src.Dir, "22")
		src.Addr, src.Dir, src.User = host, dir, p.str("username")
		if pw := p.str("password"); pw != "" {
			src.Password = t.secret(name+".password", pw)
		}
		diffs = append(diffs, "the server's host key must be in known_hosts")
	default:
		t.report.add(c.Name, part, NotTranslated, "the %s scheme: hl7broker reads local folders and SFTP", scheme)
		return "", false
	}
	if f := p.str("fileFilter"); f != "" && f != "*" {
		if p.flag("regex") {
			diffs = append(diffs, "its file filter is a regular expression; every file is read")
		} else {
			src.Glob = f
		}
	}
	switch p.str("afterProcessingAction") {
	case "DELETE":
		src.OnDone = "delete"
	case "MOVE":
		src.OnDone, src.DoneDir = "move", p.str("moveToDirectory")
		if d, ok := t.resolve(src.DoneDir); ok {
			src.DoneDir = d
		} else {
			src.DoneDir = ""
			diffs = append(diffs, "files are moved to done/ beside the folder (the move-to folder was not a plain path)")
		}
	default:
		diffs = append(diffs, "Mirth left files where they were; they are moved to done/ beside the folder once read")
	}
	t.cfg.Sources = append(t.cfg.Sources, src)
	status := Translated
	if len(diffs) > 0 {
		status = Different
	}
	t.report.add(c.Name, part, status, "%s source %s on %s%s", src.Type, name, src.Dir, prefixed("; ", strings.Join(diffs, "; ")))
	return name, true
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

// splitRemote splits Mirth's "host[:port]/path" of a remote folder.
func splitRemote(s, port string) (addr, dir string) {
	host, path, _ := strings.Cut(s, "/")
	if _, _, err := net.SplitHostPort(host); err != nil {
		host = net.JoinHostPort(host, port)
	}
	return host, "/" + path
}

// destination translates destination connector d of c into dname.
func (t *translator) destination(c *Channel, d *Connector, dname string) (outDest, bool) {
	p := d.Props
	part := "destination " + d.Name + " (" + d.Transport + ")"
	out := outDest{Name: dname}
	var diffs []string
	template := ""
	switch {
	case strings.Contains(d.Class, "TcpDispatcherProperties"):
		host, port := p.str("remoteAddress"), p.str("remotePort")
		if !t.settings(c, part, []string{"remote address", "remote port"}, &host, &port) {
			return out, false
		}
		out.Type, out.Addr = "mllp", net.JoinHostPort(host, port)
		out.Timeout = millis(p.str("responseTimeout"))
		template = p.str("template")
		if mode := p.str("transmissionModeProperties", "pluginPointName"); mode != "" && mode != "MLLP" {
			diffs = append(diffs, "its framing is "+mode+"; hl7broker sends MLLP")
		}
		if p.flag("ignoreResponse") {
			diffs = append(diffs, "Mirth ignored the response; hl7broker waits for the ACK")
		}
	case strings.Contains(d.Class, "HttpDispatcherProperties"):
		out.Type, out.URL, out.ContentType = "http", p.str("host"), p.str("contentType")
		if !t.settings(c, part, []string{"URL"}, &out.URL) {
			return out, false
		}
		out.Timeout = millis(p.str("socketTimeout"))
		out.Headers = headers(p.child("headers"))
		for k, v := range out.Headers {
			if r, ok := t.resolve(v); ok {
				out.Headers[k] = r
			} else if strings.Contains(v, "${") {
				delete(out.Headers, k)
				diffs = append(diffs, fmt.Sprintf("header %s (%q) is left out: its value was filled per message", k, v))
			}
		}
		template = p.str("content")
		if m := strings.ToUpper(p.str("method")); m != "" && m != "POST" {
			diffs = append(diffs, "Mirth used "+m+"; hl7broker POSTs")
		}
		if p.flag("useAuthentication") {
			diffs = append(diffs, "its authentication is not imported: add an Authorization header with a ${file:…} reference")
		}
	case strings.Contains(d.Class, "FileDispatcherProperties"):
		template = p.str("template")
		dir := p.str("host")
		if !t.settings(c, part, []string{"folder"}, &dir) {
			return out, false
		}
		switch scheme := strings.ToUpper(p.str("scheme")); scheme {
		case "", "FILE":
			out.Type, out.Dir = "file", dir
		case "SFTP":
			out.Type = "sftp"
			out.Addr, out.Dir = splitRemote(dir, "22")
			out.User = p.str("username")
			if pw := p.str("password"); pw != "" {
				out.Password = t.secret(dname+".password", pw)
			}
		default:
			t.report.add(c.Name, part, NotTranslated, "the %s scheme: hl7broker writes local folders and SFTP", scheme)
			return out, false
		}
		if pat := p.str("outputPattern"); pat != "" {
			diffs = append(diffs, fmt.Sprintf("files are named {seq}-{control_id}.{ext}, not %q", pat))
		}
		if p.flag("outputAppend") {
			diffs = append(diffs, "Mirth appended to one file; hl7broker writes a file per message")
		}
	case strings.Contains(d.Class, "DatabaseDispatcherProperties"):
		if !t.database(c, d, &out, part) {
			return out, false
		}
	case strings.Contains(d.Class, "SmtpDispatcherProperties"):
		if !t.smtp(c, d, &out, part, &diffs) {
			return out, false
		}
	default:
		t.report.add(c.Name, part, NotTranslated, "no hl7broker destination does what a %s does", d.Transport)
		return out, false
	}
	if t.dbNote != "" {
		diffs, t.dbNote = append(diffs, t.dbNote), ""
	}
	diffs = append(diffs, t.queue(p.child("destinationConnectorProperties"), &out)...)
	switch {
	case out.Type == "email" && len(d.Steps.Steps) > 0:
		diffs = append(diffs, "its transformer is not run: an email attaches the message as routed")
	case out.Type != "postgres" && out.Type != "email":
		out.Encoder = t.encoder(c, d, template)
	}
	if len(d.Response.Steps) > 0 {
		t.report.add(c.Name, part+": response transformer", NotTranslated, "hl7broker keeps the downstream's ACK code, and runs nothing on it")
	}
	status := Translated
	if len(diffs) > 0 {
		status = Different
	}
	t.report.add(c.Name, part, status, "%s destination %s%s", out.Type, dname, prefixed("; ", strings.Join(diffs, "; ")))
	return out, true
}

// smtp translates an SMTP Sender into an email destination: its server,
// login, sender and recipients (fixed ones; a recipient Mirth filled per
// message is left out and named), subject and body with Mirth's
// ${message...} variables left as text (named), and the message attached
// as received.
func (t *translator) smtp(c *Channel, d *Connector, out *outDest, part string, diffs *[]string) bool {
	p := d.Props
	host, port := p.str("smtpHost"), p.str("smtpPort")
	if !t.settings(c, part, []string{"SMTP host", "SMTP port"}, &host, &port) {
		return false
	}
	out.Type = "email"
	out.SMTP = &outSMTP{Addr: net.JoinHostPort(host, cmp.Or(port, "25"))}
	switch strings.ToLower(p.str("encryption")) {
	case "tls":
	case "ssl":
		*diffs = append(*diffs, "Mirth used implicit TLS (SSL); hl7broker requires STARTTLS: point smtp.addr at the server's submission port")
	default:
		no := false
		out.SMTP.StartTLS = &no
		*diffs = append(*diffs, "Mirth mailed without encryption; so does this (starttls: false, which check warns about)")
	}
	if p.flag("authentication") {
		out.SMTP.Username = p.str("username")
		if pw := p.str("password"); pw != "" {
			out.SMTP.Password = t.secret(out.Name+".smtp.password", pw)
		}
	}
	out.From = p.str("from")
	for a := range strings.SplitSeq(p.str("to"), ",") {
		switch a = strings.TrimSpace(a); {
		case a == "":
		case strings.Contains(a, "${"):
			*diffs = append(*diffs, fmt.Sprintf("recipient %q was filled per message: add it with to_field and to_table", a))
		default:
			out.To = append(out.To, a)
		}
	}
	if len(out.To) == 0 {
		t.report.add(c.Name, part, NotTranslated, "no fixed recipient: add to (or to_field with to_table) and import again")
		return false
	}
	for _, f := range []struct{ name, v string }{{"subject", p.str("subject")}, {"body", p.str("body")}} {
		if strings.Contains(f.v, "${") {
			*diffs = append(*diffs, fmt.Sprintf("the %s's ${…} variables are kept as text: write {{PATH}} placeholders (PID-5.1) in their place", f.name))
		}
	}
	out.Subject, out.Body, out.Attach = p.str("subject"), p.str("body"), "er7"
	if p.str("cc") != "" || p.str("bcc") != "" {
		*diffs = append(*diffs, "cc and bcc become nothing: put them in to")
	}
	if p.flag("html") {
		*diffs = append(*diffs, "Mirth sent HTML; hl7broker sends plain text")
	}
	*diffs = append(*diffs, "the message is attached as received (attach: er7), whatever Mirth attached")
	return true
}

// headers reads an HTTP Sender's headers (Mirth 3.7 and later: a list of
// values per name; before: one value).
func headers(n *node) map[string]string {
	out := map[string]string{}
	for _, e := range n.children() {
		if len(e.kids) < 2 {
			continue
		}
		name, v := strings.TrimSpace(e.kids[0].text), e.kids[1]
		if v.name == "list" {
			var vals []string
			for _, s := range v.kids {
				vals = append(vals, strings.TrimSpace(s.text))
			}
			out[name] = strings.Join(vals, ", ")
		} else {
			out[name] = strings.TrimSpace(v.text)
		}
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// queue translates a destination's queue settings into retries and
// ordering, returning the differences.
func (t *translator) queue(q *node, out *outDest) []string {
	if q == nil {
		return nil
	}
	var diffs []string
	interval := millis(q.str("retryIntervalMillis"))
	retries, _ := strconv.Atoi(q.str("retryCount"))
	switch {
	case q.flag("queueEnabled"):
		out.Retry = &outRetry{MaxAttempts: 0}
	default:
		out.Retry = &outRetry{MaxAttempts: retries + 1}
		diffs = append(diffs, fmt.Sprintf("queue off: after %d attempts Mirth marked the message errored; hl7broker dead-letters it, to be replayed", retries+1))
	}
	if interval != "" {
		out.Retry.Backoff = []string{interval}
	}
	if q.flag("rotate") {
		diffs = append(diffs, "rotate is not kept: a failing message holds the queue in order (ordering: parallel lets later ones pass)")
	}
	if n, _ := strconv.Atoi(q.str("threadCount")); n > 1 {
		out.Ordering, out.Concurrency = "parallel", n
		diffs = append(diffs, fmt.Sprintf("%d threads: ordering parallel, %d at once, no order kept (as in Mirth)", n, n))
		if v := q.str("threadAssignmentVariable"); v != "" {
			diffs = append(diffs, "thread assignment by "+v+" is not kept: for order per key, use ordering: key with partition_by")
		}
	}
	return diffs
}

// encoder is destination d's transformer, outbound template and
// connector template as an encoder (nil when it sends the message as it
// is, as most MLLP destinations do).
func (t *translator) encoder(c *Channel, d *Connector, template string) *outEncoder {
	name := t.slugs[c]
	enc := &outEncoder{Mirth: true}
	if template != "" && template != "${message.encodedData}" {
		enc.Velocity = template
	}
	tr := d.Steps
	steps := t.usableSteps(c, "destination "+d.Name, tr.Steps)
	if strings.TrimSpace(tr.OutboundTemplate) != "" {
		enc.Template = tr.OutboundTemplate
	}
	if len(steps) > 0 || enc.Template != "" {
		enc.ScriptFile = t.scriptFile(c.Name, "destination "+d.Name+": transformer ("+countOf(len(steps), "step")+")",
			fmt.Sprintf("scripts/%s/%s-transformer.js", name, slug(d.Name, "dest")), encoderKind, transformerScript(steps))
	}
	if enc.ScriptFile == "" && enc.Velocity == "" {
		return nil
	}
	if enc.ScriptFile == "" {
		enc.Mirth = false
	}
	return enc
}

var placeholder = regexp.MustCompile(`'?\$\{([A-Za-z_][\w.]*)\}'?`)

var insertRE = regexp.MustCompile(`(?is)^\s*INSERT\s+INTO\s+([\w."` + "`" + `]+)\s*\(([^)]*)\)\s*VALUES\s*\(([^)]*)\)\s*;?\s*$`)

// database translates a Database Writer to PostgreSQL, MySQL or MariaDB
// whose query is an INSERT of variables that Mapper steps read from single
// components.
func (t *translator) database(c *Channel, d *Connector, out *outDest, part string) bool {
	p := d.Props
	if p.flag("useScript") {
		t.report.add(c.Name, part, NotTranslated, "it runs a JavaScript with database calls: rewrite it as a postgres or mysql destination's table and columns")
		return false
	}
	jdbc := p.str("url")
	if !t.settings(c, part, []string{"URL"}, &jdbc) {
		return false
	}
	typ := map[bool]string{true: "postgres", false: "mysql"}[strings.HasPrefix(jdbc, "jdbc:postgresql:")]
	if !strings.HasPrefix(jdbc, "jdbc:postgresql:") && !strings.HasPrefix(jdbc, "jdbc:mysql:") && !strings.HasPrefix(jdbc, "jdbc:mariadb:") {
		t.report.add(c.Name, part, NotTranslated, "only PostgreSQL, MySQL and MariaDB databases are written here")
		return false
	}
	m := insertRE.FindStringSubmatch(p.str("query"))
	if m == nil {
		t.report.add(c.Name, part, NotTranslated, "its statement is not a plain INSERT INTO t (…) VALUES (…)")
		return false
	}
	cols, vals := splitList(strings.ReplaceAll(m[2], "`", "")), splitList(m[3])
	if len(cols) != len(vals) {
		t.report.add(c.Name, part, NotTranslated, "its INSERT has %d columns and %d values", len(cols), len(vals))
		return false
	}
	paths := t.mappedPaths(c, d)
	out.Columns = map[string]string{}
	var repeating []string
	for i, v := range vals {
		pm := placeholder.FindStringSubmatch(v)
		if pm == nil || pm[0] != v {
			t.report.add(c.Name, part, NotTranslated, "the value of column %s is not a variable ${…}", cols[i])
			return false
		}
		switch {
		case pm[1] == "message.encodedData" || pm[1] == "message.rawData":
			out.Columns[strings.Trim(cols[i], `"`)] = "$message"
		case paths[pm[1]] != "":
			out.Columns[strings.Trim(cols[i], `"`)] = paths[pm[1]]
			if !singleSegments[paths[pm[1]][:3]] {
				repeating = append(repeating, paths[pm[1]])
			}
		default:
			t.report.add(c.Name, part, NotTranslated, "column %s takes ${%s}, which no Mapper step reads from one component of a single segment", cols[i], pm[1])
			return false
		}
	}
	u, err := url.Parse(strings.Replace(strings.TrimPrefix(jdbc, "jdbc:"), "mariadb://", "mysql://", 1))
	if err != nil {
		t.report.add(c.Name, part, NotTranslated, "its URL does not parse")
		return false
	}
	u.User = url.User(p.str("username"))
	u.RawQuery = ""
	out.Type, out.URL, out.Table = typ, u.String(), strings.Trim(m[1], "\"`")
	if pw := p.str("password"); pw != "" {
		out.Password = t.secret(out.Name+".password", pw)
	}
	// A retry must not add a row twice: hl7broker needs a column it
	// fills with the message's id, under a unique index.
	out.Columns["hl7broker_message_id"] = "$message_id"
	notes := []string{"add a column hl7broker_message_id (text, unique index) to " + out.Table + ": it keeps a retry from adding a row twice"}
	if len(repeating) > 0 {
		notes = append(notes, fmt.Sprintf("%s read from the first such segment (Mirth would write the XML of all of them when there are several)", strings.Join(repeating, ", ")))
	}
	t.dbNote = strings.Join(notes, "; ")
	return true
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(f))
	}
	return out
}

// mappedPaths are the variables the channel's source transformer and d's
// transformer set from one component: variable -> path.
func (t *translator) mappedPaths(c *Channel, d *Connector) map[string]string {
	out := map[string]string{}
	for _, s := range append(append([]Step(nil), c.Source.Steps.Steps...), d.Steps.Steps...) {
		if s.Kind != "mapper" || s.Disabled || len(s.Replace) > 0 || s.Default != "" {
			continue
		}
		if p, ok := componentPath(s.Mapping); ok {
			out[s.Variable] = p
		}
	}
	return out
}
