package script

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/dop251/goja"
)

// Spec is a script as a config writes it: inline source or a file beside
// the config, and whether it is written for Mirth Connect.
type Spec struct {
	Script     string `mapstructure:"script"`      // inline source
	ScriptFile string `mapstructure:"script_file"` // or a file, relative to the config file
	Mirth      bool   `mapstructure:"mirth"`       // Mirth Connect compatibility (E4X, for each, maps)
}

// Kind is where a script stands, which decides what it is given and what
// its result means.
type Kind int

const (
	// Step edits the message and sets variables; its result is ignored.
	Step Kind = iota
	// Condition returns whether the message matches: an expression, or a
	// body that returns a boolean.
	Condition
	// Encoder returns the payload a destination sends.
	Encoder
	// Builder makes an HL7 v2 message of a document a source received
	// (JSON or XML): it is given the document as msg, and returns the
	// message's text.
	Builder
)

func (k Kind) String() string {
	return [...]string{"step", "condition", "encoder", "builder"}[k]
}

// Script is a compiled script, safe for concurrent use: each run takes a
// runtime from its Engine's pool.
type Script struct {
	name   string // the config key or file that holds it, for errors
	kind   Kind
	mirth  bool
	prog   *goja.Program // evaluates to the script's function
	header int           // columns the wrapper adds before the first line
	lines  int           // the script's own lines: a position past them is at its end
	last   int           // columns of its last line
	engine *Engine
}

// Name is where the script is written: a file name, or the config key.
func (s *Script) Name() string { return s.name }

// Error is a script that failed to compile or to run. Its Error names the
// script, line and column and what went wrong, never a value from the
// message: it is logged and kept with a dead letter. Detail is what the
// script threw, which may quote values: only tools a person runs on a
// message they already see (route test) show it.
type Error struct {
	Script string
	Line   int // 1-based; 0 when not known
	Column int
	Reason string // "TypeError", "time limit of 1s exceeded", "syntax error: ..."
	Detail string
}

func (e *Error) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("script %s: %s", e.Script, e.Reason)
	}
	return fmt.Sprintf("script %s line %d:%d: %s", e.Script, e.Line, e.Column, e.Reason)
}

// The reasons a run stops that are the sandbox's, not the script's.
var (
	ErrTimeLimit   = errors.New("time limit exceeded")
	ErrMemoryLimit = errors.New("memory limit exceeded")
	ErrStackLimit  = errors.New("call stack too deep")
)

// params are what a script's function is given, by mode.
func params(mirth bool) string {
	if mirth {
		return "msg, tmp, vars, log" // the maps, $ and logger are globals (prelude.js)
	}
	return "msg, vars, log"
}

// Compile compiles one script for kind. name says where it is written, for
// errors; source is the script's text. A syntax error is an *Error with
// its line and column in source.
func (e *Engine) Compile(name string, kind Kind, source string, mirth bool) (*Script, error) {
	if kind == Builder && mirth {
		return nil, &Error{Script: name, Reason: "a script that builds messages from documents is written without mirth: true (it is given the document as msg)"}
	}
	s := &Script{name: name, kind: kind, mirth: mirth, engine: e, lines: strings.Count(source, "\n") + 1}
	s.last = len(source) - strings.LastIndex(source, "\n") - 1
	body := source
	if mirth {
		var err error
		if body, err = RewriteForEach(source); err != nil {
			var pe *PositionError
			if errors.As(err, &pe) {
				return nil, &Error{Script: name, Line: pe.Line, Column: pe.Column, Reason: "syntax error: " + pe.Reason}
			}
			return nil, &Error{Script: name, Reason: "syntax error: " + err.Error()}
		}
	}
	open := "(function(" + params(mirth) + "){"
	if !mirth {
		open += `"use strict";`
	}
	if kind == Condition {
		// An expression first (msg.get('PV1-2') == 'I'), else a body
		// that returns.
		if prog, err := goja.Compile(name, open+"return ("+body+"\n);})", false); err == nil {
			s.prog, s.header = prog, len(open)+len("return (")
			return s, nil
		}
	}
	s.header = len(open)
	prog, err := goja.Compile(name, open+body+"\n})", false)
	if err != nil {
		return nil, s.syntaxError(err)
	}
	s.prog = prog
	return s, nil
}

var syntaxPos = regexp.MustCompile(`Line (\d+):(\d+) (.*)`)

// syntaxError is err (from goja.Compile) placed in the script's own text.
func (s *Script) syntaxError(err error) error {
	msg := err.Error()
	if m := syntaxPos.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		col, _ := strconv.Atoi(m[2])
		line, col = s.place(line, col)
		reason := strings.TrimSpace(m[3])
		if i := strings.Index(reason, " (and "); i > 0 {
			reason = reason[:i] // "(and 2 more errors)"
		}
		return &Error{Script: s.name, Line: line, Column: col, Reason: "syntax error: " + reason}
	}
	return &Error{Script: s.name, Reason: "syntax error: " + msg}
}

// place turns a position in the wrapped source into one in the script.
func (s *Script) place(line, col int) (int, int) {
	if s.lines > 0 && line > s.lines { // the wrapper's closing line: the script ended early
		return s.lines, s.last + 1
	}
	if line == 1 {
		col -= s.header
		if col < 1 {
			col = 1
		}
	}
	return line, col
}
