package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func tokenFile(t *testing.T, tok string) string {
	f := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(f, []byte(tok+"\n"), 0o600))
	return f
}

// A call carries the token, decodes a success, and turns an error answer
// into its status and reason; an unreachable server is status 0, and a
// missing token file a usage error, without the token in any message.
func TestClientCallsAndSaysWhatTheServerAnswered(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret-token-value" {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":"no valid token"}`))
			return
		}
		_, _ = w.Write([]byte(`{"name":"emr","paused":true}`))
	}))
	defer srv.Close()

	c, err := New(Options{Server: srv.URL, TokenFile: tokenFile(t, "s3cret-token-value")})
	require.NoError(t, err)
	var got struct {
		Name   string
		Paused bool
	}
	require.NoError(t, c.Call(context.Background(), "GET", "/api/v1/destinations/emr", nil, nil, &got))
	assert.Equal(t, "emr", got.Name)
	assert.True(t, got.Paused)
	var raw json.RawMessage
	require.NoError(t, c.Call(context.Background(), "GET", "/x", nil, nil, &raw))
	assert.JSONEq(t, `{"name":"emr","paused":true}`, string(raw))

	bad, err := New(Options{Server: srv.URL, TokenFile: tokenFile(t, "wrong-token-value")})
	require.NoError(t, err)
	err = bad.Call(context.Background(), "GET", "/x", nil, nil, nil)
	var ce *Error
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, http.StatusUnauthorized, ce.Status)
	assert.Equal(t, "no valid token (HTTP 401)", ce.Error())
	assert.NotContains(t, ce.Error(), "wrong-token-value")

	srv.Close()
	err = c.Call(context.Background(), "GET", "/x", nil, nil, nil)
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 0, ce.Status, "unreachable")
	assert.Contains(t, ce.Error(), "cannot reach the broker")

	_, err = New(Options{Server: srv.URL})
	assert.True(t, errors.Is(err, ErrUsage))
	_, err = New(Options{TokenFile: filepath.Join(t.TempDir(), "none")})
	assert.True(t, errors.Is(err, ErrUsage))
}
