package admin

import (
	"embed"
	"io/fs"
	"net/http"
)

// The console is static: plain HTML, CSS and JavaScript embedded in the
// binary (nothing fetched at run time: hospital networks are closed), a
// client of /api/v1 like the CLI, so the two can never disagree. No
// framework: a few hundred lines of DOM code that only ever set text
// (never HTML), under a Content Security Policy without 'unsafe-inline'.
//
//go:embed console
var consoleFiles embed.FS

// consolePolicy allows the console's own files and nothing else: no
// inline script or style, no other origin, no framing.
const consolePolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; " +
	"base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func console() http.Handler {
	sub, _ := fs.Sub(consoleFiles, "console") // the directory is embedded: cannot fail
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		securityHeaders(w)
		w.Header().Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}

// securityHeaders are on every console response.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", consolePolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
}
