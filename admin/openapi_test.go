package admin

import (
	"net/http"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// patterns lists the routes an API registers.
type patterns []string

func (p *patterns) Handle(pattern string, _ http.Handler) { *p = append(*p, pattern) }
func (p *patterns) HandleFunc(pattern string, _ func(http.ResponseWriter, *http.Request)) {
	*p = append(*p, pattern)
}

// docs/openapi.yaml describes every /api/v1 endpoint the server answers,
// and no other: a route added without its description fails here.
func TestOpenAPIDescribesEveryAPIRoute(t *testing.T) {
	var registered patterns
	(&API{}).routes(&registered)
	var served []string
	for _, p := range registered {
		if method, path, ok := strings.Cut(p, " "); ok && strings.HasPrefix(path, "/api/v1/") {
			served = append(served, method+" "+path)
		}
	}
	raw, err := os.ReadFile("../docs/openapi.yaml")
	require.NoError(t, err)
	var doc struct {
		Paths map[string]map[string]any `yaml:"paths"`
	}
	require.NoError(t, yaml.Unmarshal(raw, &doc))
	var described []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if !strings.HasPrefix(path, "/api/v1/") {
				continue
			}
			described = append(described, strings.ToUpper(method)+" "+path)
		}
	}
	slices.Sort(served)
	slices.Sort(described)
	require.NotEmpty(t, served)
	assert.Equal(t, served, described, "docs/openapi.yaml's /api/v1 paths and the routes the API registers")
}
