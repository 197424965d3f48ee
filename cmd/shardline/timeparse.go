package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

const timestampHelp = "RFC 3339 (2024-05-01T12:00:00Z), a date (2024-05-01, UTC), Unix seconds (1714564800), or a duration ago (-15m, 2h30m ago)"

// parseTimestamp reads a point in time as the commands take it (see timestampHelp); relative
// forms count back from now.
func parseTimestamp(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02 15:04:05", "2006-01-02"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, nil
		}
	}
	if rel, ok := strings.CutSuffix(s, " ago"); ok {
		if d, err := time.ParseDuration(strings.TrimSpace(rel)); err == nil && d >= 0 {
			return now.Add(-d), nil
		}
	}
	if rel, ok := strings.CutPrefix(s, "-"); ok {
		if d, err := time.ParseDuration(rel); err == nil && d >= 0 {
			return now.Add(-d), nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && !strings.ContainsAny(s, "eE") {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)).UTC(), nil
	}
	return time.Time{}, fmt.Errorf("bad timestamp %q: want %s", s, timestampHelp)
}
