package script

import (
	"strconv"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/hl7"
)

// Velocity fills a text's ${name} placeholders, as Mirth fills its
// connectors' fields (a small part of Apache Velocity): ${name} is
// lookup(name), left as written when lookup has nothing (as Velocity
// does); $!{name} is "" then. Besides what lookup knows: ${UUID},
// ${SYSTIME} (milliseconds since 1970), ${DATE} (yyyy-MM-dd HH:mm:ss) and
// ${date.get('pattern')}.
func Velocity(text string, lookup func(name string) (string, bool)) string {
	if !strings.Contains(text, "${") && !strings.Contains(text, "$!{") {
		return text
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(text, '$')
		if i < 0 {
			b.WriteString(text)
			return b.String()
		}
		b.WriteString(text[:i])
		rest := text[i+1:]
		quiet := strings.HasPrefix(rest, "!{")
		if quiet {
			rest = rest[1:]
		}
		end := strings.IndexByte(rest, '}')
		if !strings.HasPrefix(rest, "{") || end < 0 {
			b.WriteByte('$')
			text = text[i+1:]
			continue
		}
		name := strings.TrimSpace(rest[1:end])
		if v, ok := builtin(name, lookup); ok {
			b.WriteString(v)
		} else if !quiet { // left as written: $, then rest up to its }
			b.WriteString(text[i : i+2+end])
		}
		text = rest[end+1:]
	}
}

func builtin(name string, lookup func(string) (string, bool)) (string, bool) {
	switch name {
	case "UUID":
		return newUUID(), true
	case "SYSTIME":
		return strconv.FormatInt(time.Now().UnixMilli(), 10), true
	case "DATE":
		return time.Now().Format("2006-01-02 15:04:05"), true
	}
	if p, ok := strings.CutPrefix(name, "date.get("); ok && strings.HasSuffix(p, ")") {
		p = strings.Trim(strings.TrimSuffix(p, ")"), `'" `)
		return time.Now().Format(hl7.Layout(p)), true
	}
	if lookup == nil {
		return "", false
	}
	return lookup(name)
}
