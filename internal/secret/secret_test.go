package secret

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestURLRedactsUserinfoAndQueryValues(t *testing.T) {
	cases := map[string]string{
		"https://ehr.example/in?token=abc123&v=2":    "https://ehr.example/in?token=REDACTED&v=REDACTED",
		"nats://alice:pa55w0rd@10.0.0.1:4222":        "nats://REDACTED@10.0.0.1:4222",
		"nats://s3cr3tt0ken@n1:4222, nats://n2:4222": "nats://REDACTED@n1:4222,nats://n2:4222",
		"http://h/p#frag-secret":                     "http://h/p",
		"http://plain.example:8080/x":                "http://plain.example:8080/x",
		"nats://u:p@ho st:42":                        "nats://(a URL that does not parse)",
		"::not a url with sekret":                    "(a URL that does not parse)",
	}
	for in, want := range cases {
		assert.Equal(t, want, URL(in), in)
	}
}

func TestErrorRedactsURLError(t *testing.T) {
	err := &url.Error{Op: "Post", URL: "http://h/in?token=abc123", Err: errors.New("connection refused")}
	got := Error(err).Error()
	assert.NotContains(t, got, "abc123")
	assert.Contains(t, got, "connection refused")
	assert.Nil(t, Error(nil))
}

func TestExpand(t *testing.T) {
	t.Setenv("HL7B_TEST_TOKEN", "tok-1")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "pw"), []byte("file-secret\n"), 0o600))
	got, err := Expand("Bearer ${env:HL7B_TEST_TOKEN}/${file:pw}/$literal", dir)
	require.NoError(t, err)
	assert.Equal(t, "Bearer tok-1/file-secret/$literal", got)

	_, err = Expand("${env:HL7B_TEST_MISSING}", dir)
	require.Error(t, err)
	assert.Equal(t, "environment variable HL7B_TEST_MISSING is not set", err.Error())
	_, err = Expand("${file:nope}", dir)
	require.Error(t, err)
	assert.True(t, strings.Contains(err.Error(), "cannot be read"))
	assert.True(t, IsRef("${env:X}"))
	assert.False(t, IsRef("x${env:X}"))
}

// A secret may stand anywhere in a URL: in its path, as a webhook's token
// does. Once expanded from a reference it is scrubbed from every printed
// URL and error, as written and as escaped.
func TestSecretInAURLPathIsRedactedWherePrinted(t *testing.T) {
	t.Setenv("HL7B_PATHTOK", "hooktok/9f3+x")
	u, err := Expand("http://127.0.0.1:1/hook/${env:HL7B_PATHTOK}/in", "")
	require.NoError(t, err)
	assert.Equal(t, "http://127.0.0.1:1/hook/REDACTED/in", URL(u))
	escaped := "http://127.0.0.1:1/hook/" + url.PathEscape("hooktok/9f3+x") + "/in"
	assert.NotContains(t, URL(escaped), "9f3")
	_, perr := http.Post(u, "text/plain", strings.NewReader("x"))
	require.Error(t, perr)
	got := Error(perr)
	assert.NotContains(t, got.Error(), "9f3", "Go's HTTP client error, redacted")
	var ue *url.Error
	assert.True(t, errors.As(got, &ue), "still a *url.Error underneath")
	wrapped := Error(fmt.Errorf("posting to %s: refused", u))
	assert.Equal(t, "posting to http://127.0.0.1:1/hook/REDACTED/in: refused", wrapped.Error())
	assert.Equal(t, "short: abc", Scrub("short: abc"), "values under 4 bytes are not scrubbed")
}
