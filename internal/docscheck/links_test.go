package docscheck

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// anchor is GitHub's anchor for a heading: lower case, punctuation other
// than - and _ dropped, spaces as -.
func anchor(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r > 127 && r != '–' && r != '—' && r != '…' && r != '×':
			b.WriteRune(r)
		}
	}
	return b.String()
}

var (
	linkRE    = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	headingRE = regexp.MustCompile("(?m)^#{1,6} (.+)$")
	fenceRE   = regexp.MustCompile("(?ms)^```.*?^```")
)

func anchors(t *testing.T, file string) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile(file)
	require.NoError(t, err)
	out := map[string]bool{}
	for _, m := range headingRE.FindAllStringSubmatch(fenceRE.ReplaceAllString(string(raw), ""), -1) {
		a := anchor(m[1])
		for n := 1; out[a]; n++ { // GitHub numbers repeated headings
			a = anchor(m[1]) + "-" + string(rune('0'+n))
		}
		out[a] = true
	}
	return out
}

// Every relative link of README.md and docs/*.md names a file that exists,
// and its anchor, if any, a heading of that file.
func TestDocsLinksResolve(t *testing.T) {
	files, err := filepath.Glob("../../docs/*.md")
	require.NoError(t, err)
	files = append(files, "../../README.md", "../../CHANGELOG.md", "../../SECURITY.md")
	checked := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		require.NoError(t, err)
		text := fenceRE.ReplaceAllString(string(raw), "")
		for _, m := range linkRE.FindAllStringSubmatch(text, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			path, frag, _ := strings.Cut(target, "#")
			dest := f
			if path != "" {
				dest = filepath.Join(filepath.Dir(f), path)
			}
			if _, err := os.Stat(dest); err != nil {
				assert.NoError(t, err, "%s links to %s", f, target)
				continue
			}
			checked++
			if frag != "" && strings.HasSuffix(dest, ".md") {
				assert.True(t, anchors(t, dest)[frag], "%s links to %s: no such heading in %s", f, target, dest)
			}
		}
	}
	assert.Greater(t, checked, 50)
}

// Every package of the module has a row in docs/contributing.md's table
// of packages, and every row names packages that exist.
func TestContributingListsEveryPackage(t *testing.T) {
	raw, err := os.ReadFile("../../docs/contributing.md")
	require.NoError(t, err)
	text := string(raw)
	start := strings.Index(text, "\n## Packages\n")
	require.GreaterOrEqual(t, start, 0)
	table := text[start:]
	table = table[:strings.Index(table[1:], "\n## ")+1]
	listed := map[string]bool{}
	for _, line := range strings.Split(table, "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		for _, m := range regexp.MustCompile("`([a-z0-9/]+)`").FindAllStringSubmatch(strings.SplitN(line, "|", 3)[1], -1) {
			listed[m[1]] = true
		}
	}
	var packages []string
	require.NoError(t, filepath.WalkDir("../..", func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules") && p != "../.." {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".go") {
			dir, _ := filepath.Rel("../..", filepath.Dir(p))
			if len(packages) == 0 || packages[len(packages)-1] != dir {
				packages = append(packages, filepath.ToSlash(dir))
			}
		}
		return nil
	}))
	for _, p := range packages {
		if p != "." {
			assert.True(t, listed[p], "package %s has no row in docs/contributing.md's table of packages", p)
		}
	}
	for p := range listed {
		_, err := os.Stat(filepath.Join("../..", p))
		assert.NoError(t, err, "docs/contributing.md lists %s, which does not exist", p)
	}
}
