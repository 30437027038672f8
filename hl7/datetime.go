package hl7

import (
	"errors"
	"strings"
	"time"
)

// timeLayouts are HL7 DTM precisions, most precise first. Go accepts a
// fraction of a second after the seconds without a layout for it.
var timeLayouts = []string{"20060102150405-0700", "200601021504-0700", "20060102150405", "200601021504",
	"2006010215", "20060102", "200601", "2006"}

// ErrNotTime says a value is not an HL7 date/time.
var ErrNotTime = errors.New("hl7: not a date/time (YYYY[MM[DD[HH[MM[SS[.S]]]]]][+/-ZZZZ])")

// ParseTime parses an HL7 date/time (DT or DTM) at any precision:
// 2026, 202601, 20260114, 202601140815, 20260114081530.1234-0500. A value
// without a zone is read as UTC.
func ParseTime(v string) (time.Time, error) { return ParseTimeIn(v, time.UTC) }

// ParseTimeIn is ParseTime with a value that has no zone read as a time
// in loc (the sender's zone); a value with one keeps its own offset.
func ParseTimeIn(v string, loc *time.Location) (time.Time, error) {
	for _, l := range timeLayouts {
		if t, err := time.ParseInLocation(l, v, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, ErrNotTime
}

// javaLayout translates the date patterns analysts write (as in Mirth and
// Java's SimpleDateFormat) into Go's reference layout.
var javaLayout = strings.NewReplacer("yyyy", "2006", "yy", "06", "MM", "01", "dd", "02", "HH", "15", "mm", "04", "ss", "05", "SSS", "000", "Z", "-0700")

// Layout is a Java-style date pattern (yyyyMMddHHmmss, yyyy-MM-dd, SSS,
// Z) as a Go time layout.
func Layout(pattern string) string { return javaLayout.Replace(pattern) }
