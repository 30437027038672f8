package client

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestExitCodes: each failure a command can meet has its exit code and
// the message printed for it.
func TestExitCodes(t *testing.T) {
	for _, c := range []struct {
		err  error
		code int
		msg  string
	}{
		{Usage("--key takes NAME=VALUE"), ExitUsage, "--key takes NAME=VALUE"},
		{fmt.Errorf("%w: token file: gone", ErrUsage), ExitUsage, "token file: gone"},
		{&Error{Message: "cannot reach the broker: refused"}, ExitUnreachable, "cannot reach the broker: refused"},
		{&Error{Status: 401, Message: "no token"}, ExitUnauthorized, "no token (HTTP 401)"},
		{&Error{Status: 403, Message: "viewer may not"}, ExitUnauthorized, "viewer may not (HTTP 403)"},
		{&Error{Status: 404, Message: "no message 9"}, ExitNotFound, "no message 9 (HTTP 404)"},
		{&Error{Status: 400, Message: "bad from"}, ExitUsage, "bad from (HTTP 400)"},
		{&Error{Status: 503, Message: "storage down"}, ExitFailed, "storage down (HTTP 503)"},
		{errors.New("unexpected end of JSON input"), ExitFailed, "unexpected end of JSON input"},
	} {
		code, msg := Exit(c.err)
		assert.Equal(t, c.code, code, c.msg)
		assert.Equal(t, c.msg, msg)
	}
}

func TestIDsAndBodies(t *testing.T) {
	assert.NoError(t, IDs([]string{"1", "42"}))
	assert.EqualError(t, IDs([]string{"1", "x"}), `"x" is not an id`)
	assert.EqualError(t, IDs([]string{"0"}), `"0" is not an id`)
	all := func() (map[string]any, error) { return map[string]any{"all": true}, nil }
	_, err := IDsOr([]string{"3"}, "all", "hint", true, all)
	assert.EqualError(t, err, "give ids or --all, not both")
	_, err = IDsOr(nil, "all", "give ids or --all", false, all)
	assert.EqualError(t, err, "give ids or --all")
	b, err := IDsOr([]string{"3"}, "all", "hint", false, all)
	assert.NoError(t, err)
	assert.Equal(t, map[string]any{"ids": []string{"3"}}, b)
	q := Query(map[string]string{"type": "ADT", "event": ""}, 5)
	assert.NoError(t, Keys(q, []string{"mrn=M-1"}))
	assert.Equal(t, "key.mrn=M-1&limit=5&type=ADT", q.Encode(), "empty parameters are left out")
	assert.Error(t, Keys(q, []string{"mrn"}))
}
