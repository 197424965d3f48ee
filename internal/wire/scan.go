package wire

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// SyntaxError is a success body the codec could not read: not JSON, truncated, or a member
// of the wrong type. The codec returns it wrapped in a *smithy.DeserializationError.
type SyntaxError struct {
	Op     string // "GetRecords" or "PutRecords"
	Offset int    // byte offset in the body where reading failed
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("wire: %s response at byte %d: %s", e.Op, e.Offset, e.Msg)
}

// maxDepth bounds the nesting skipValue follows in members the codec does not know.
const maxDepth = 256

// scanner reads one JSON document from b. Its methods skip leading whitespace themselves.
// The first error sticks: later calls return it again, so a caller may check once per
// member.
type scanner struct {
	op   string
	b    []byte
	i    int
	last int // where the last string read began (its opening quote)
	err  error
}

func (s *scanner) fail(format string, args ...any) error {
	if s.err == nil {
		s.err = &SyntaxError{Op: s.op, Offset: s.i, Msg: fmt.Sprintf(format, args...)}
	}
	return s.err
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next byte after whitespace, or 0 at the end of the body.
func (s *scanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *scanner) expect(c byte) error {
	if s.err != nil {
		return s.err
	}
	if s.peek() != c {
		if s.i >= len(s.b) {
			return s.fail("unexpected end of body, want %q", c)
		}
		return s.fail("found %q, want %q", s.b[s.i], c)
	}
	s.i++
	return nil
}

// null consumes a null literal if one is next.
func (s *scanner) null() bool {
	if s.peek() == 'n' && bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += 4
		return true
	}
	return false
}

// open reads the start of an object or array (open is '{' or '['), or a null in its place
// (ok false, no error). close is the matching end.
func (s *scanner) open(open byte) (ok bool, err error) {
	if s.null() {
		return false, nil
	}
	if err := s.expect(open); err != nil {
		return false, err
	}
	return true, nil
}

// more reports whether an object or array opened with open has another member or element,
// consuming the comma before it or the closing bracket after the last.
func (s *scanner) more(first *bool, close byte) (bool, error) {
	if s.err != nil {
		return false, s.err
	}
	c := s.peek()
	if c == close {
		s.i++
		return false, nil
	}
	if *first {
		*first = false
		if c == 0 {
			return false, s.fail("unexpected end of body, want %q", close)
		}
		return true, nil
	}
	if c != ',' {
		if c == 0 {
			return false, s.fail("unexpected end of body, want ',' or %q", close)
		}
		return false, s.fail("found %q, want ',' or %q", c, close)
	}
	s.i++
	return true, nil
}

// key reads an object member's name and the colon after it. The name is a sub-slice of the
// body unless it had escapes.
func (s *scanner) key() ([]byte, error) {
	k, escaped, err := s.str()
	if err != nil {
		return nil, err
	}
	if escaped {
		unq, err := s.unquote()
		if err != nil {
			return nil, err
		}
		k = []byte(unq)
	}
	return k, s.expect(':')
}

// str reads a string and returns its raw content between the quotes, and whether it holds
// escapes (then unquote gives its value).
func (s *scanner) str() (raw []byte, escaped bool, err error) {
	if err := s.expect('"'); err != nil {
		return nil, false, err
	}
	s.last = s.i - 1
	start := s.i
	n := bytes.IndexByte(s.b[start:], '"')
	if n < 0 {
		s.i = len(s.b)
		return nil, false, s.fail("unterminated string")
	}
	if bytes.IndexByte(s.b[start:start+n], '\\') < 0 {
		s.i = start + n + 1
		return s.b[start : start+n], false, nil
	}
	// A backslash before the quote found: walk escape by escape.
	for i := start; i < len(s.b); i++ {
		switch s.b[i] {
		case '\\':
			i++
		case '"':
			s.i = i + 1
			return s.b[start:i], true, nil
		}
	}
	s.i = len(s.b)
	return nil, false, s.fail("unterminated string")
}

// unquote returns the value of the string just read, which has escapes, exactly as
// encoding/json reads it.
func (s *scanner) unquote() (string, error) {
	var v string
	if err := json.Unmarshal(s.b[s.last:s.i], &v); err != nil {
		return "", s.fail("bad string: %v", err)
	}
	return v, nil
}

// stringValue reads a string member, or null as "". Escaped strings are unquoted into a new
// string; others are returned as a sub-slice of the body.
func (s *scanner) stringValue() (raw []byte, unq string, escaped bool, err error) {
	if s.null() {
		return nil, "", false, nil
	}
	raw, escaped, err = s.str()
	if err != nil || !escaped {
		return raw, "", false, err
	}
	unq, err = s.unquote()
	return nil, unq, true, err
}

// number reads a JSON number and returns its text.
func (s *scanner) number() ([]byte, error) {
	if s.err != nil {
		return nil, s.err
	}
	s.ws()
	start, i := s.i, s.i
	b := s.b
	if i < len(b) && b[i] == '-' {
		i++
	}
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		s.i = i
		return nil, s.fail("want a number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			s.i = i
			return nil, s.fail("bad number")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			s.i = i
			return nil, s.fail("bad number")
		}
	}
	s.i = i
	return b[start:i], nil
}

// int64Value reads an integer member (null reads as 0), refusing fractions and exponents as
// the SDK does.
func (s *scanner) int64Value() (int64, error) {
	if s.null() {
		return 0, nil
	}
	tok, err := s.number()
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseInt(string(tok), 10, 64)
	if err != nil {
		return 0, s.fail("want an integer, found %s", tok)
	}
	return n, nil
}

// epochMillis converts tok, an epoch-seconds timestamp, to milliseconds as the SDK does: the
// float64 times 1000 (one rounding, as big.Float with the float's 53 bits), truncated.
func (s *scanner) epochMillis(tok []byte) (int64, error) {
	f, err := strconv.ParseFloat(string(tok), 64)
	if err != nil && !isRangeErr(err) {
		return 0, s.fail("bad timestamp %s", tok)
	}
	ms := f * 1e3
	switch {
	case math.IsInf(ms, 0) || math.IsNaN(ms):
		return 0, s.fail("timestamp %s out of range", tok)
	case ms >= math.MaxInt64:
		return math.MaxInt64, nil
	case ms <= math.MinInt64:
		return math.MinInt64, nil
	}
	return int64(ms), nil
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

// skipValue skips one value of any kind, checking its syntax as far as needed to find its
// end (strings are not unescaped, numbers are checked).
func (s *scanner) skipValue(depth int) error {
	if depth > maxDepth {
		return s.fail("nesting deeper than %d", maxDepth)
	}
	switch c := s.peek(); c {
	case '"':
		_, _, err := s.str()
		return err
	case '{':
		s.i++
		return members(s, func([]byte) error { return s.skipValue(depth + 1) })
	case '[':
		s.i++
		return elements(s, func() error { return s.skipValue(depth + 1) })
	case 't', 'f', 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if bytes.HasPrefix(s.b[s.i:], []byte(lit)) {
				s.i += len(lit)
				return nil
			}
		}
		return s.fail("bad literal")
	case 0:
		return s.fail("unexpected end of body")
	default:
		_, err := s.number()
		return err
	}
}
