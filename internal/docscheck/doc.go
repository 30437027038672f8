// Package docscheck holds the tests that keep the Markdown of README.md
// and docs/ true to itself: every relative link names a file that exists
// and, with an anchor, a heading in it. It has no code.
package docscheck
