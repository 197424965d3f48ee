package kinesisproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// The scanners below find where values sit in a JSON body instead of decoding it into Go
// values, so that the proxy can change one value (an iterator, the Records array) and pass
// every other byte on as the client or the upstream wrote it, unknown members included.

// errScan reports a body the proxy cannot read; such a call is forwarded unchanged and
// unlimited, and the upstream answers it as it would without the proxy.
var errScan = errors.New("kinesisproxy: unreadable JSON body")

// span is a value's byte range in the scanned body.
type span struct{ start, end int }

// member is one member of a JSON object.
type member struct {
	key string
	span
}

// scanObject returns the members of the JSON object that b holds (b may have surrounding
// whitespace, nothing else). Keys are compared exactly, as AWS does, so a duplicate key is
// refused rather than resolved one way or another. The standard library validates b; the
// walk that finds the spans then relies on b being valid JSON.
func scanObject(b []byte) ([]member, error) {
	if !json.Valid(b) {
		return nil, fmt.Errorf("%w: invalid JSON", errScan)
	}
	return objectMembers(b)
}

// objectMembers is scanObject for b already known to be valid JSON.
func objectMembers(b []byte) ([]member, error) {
	i := skipSpace(b, 0)
	if b[i] != '{' {
		return nil, fmt.Errorf("%w: not an object", errScan)
	}
	ms := make([]member, 0, 4) // a record has two or three members
	for i = skipSpace(b, i+1); b[i] != '}'; i = skipSpace(b, i+1) {
		kEnd := skipString(b, i)
		key, err := stringAt(b, span{i, kEnd})
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if m.key == key {
				return nil, fmt.Errorf("%w: duplicate key %q", errScan, key)
			}
		}
		start := skipSpace(b, skipSpace(b, kEnd)+1) // past the colon
		end := skipValue(b, start)
		ms = append(ms, member{key: key, span: span{start, end}})
		if i = skipSpace(b, end); b[i] == '}' {
			break
		}
	}
	return ms, nil
}

// arrayElements returns the element spans of the array b holds, b known to be valid JSON.
func arrayElements(b []byte) ([]span, error) {
	i := skipSpace(b, 0)
	if b[i] != '[' {
		return nil, fmt.Errorf("%w: not an array", errScan)
	}
	var out []span
	for i = skipSpace(b, i+1); b[i] != ']'; i = skipSpace(b, i+1) {
		end := skipValue(b, i)
		out = append(out, span{i, end})
		if i = skipSpace(b, end); b[i] == ']' {
			break
		}
	}
	return out, nil
}

// The skip functions walk valid JSON: each returns the index just past what it skips.

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\r' || b[i] == '\n') {
		i++
	}
	return i
}

// skipString skips the string starting at b[i] == '"'.
func skipString(b []byte, i int) int {
	for i++; ; i++ {
		switch b[i] {
		case '\\':
			i++ // the escaped byte; \uXXXX's hex digits are plain bytes
		case '"':
			return i + 1
		}
	}
}

// skipValue skips the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
	default: // number, true, false, null
		for i < len(b) && !strings.ContainsRune(",]} \t\r\n", rune(b[i])) {
			i++
		}
		return i
	}
}

// find returns the member named key, if present and not null.
func find(ms []member, b []byte, key string) (span, bool) {
	for _, m := range ms {
		if m.key == key {
			return m.span, !bytes.Equal(b[m.start:m.end], []byte("null"))
		}
	}
	return span{}, false
}

// stringAt decodes the JSON string at sp.
func stringAt(b []byte, sp span) (string, error) {
	v := b[sp.start:sp.end]
	if len(v) >= 2 && v[0] == '"' && bytes.IndexByte(v, '\\') < 0 {
		// The common case: no escapes, the bytes are the string (the scanner has already
		// checked that it is valid JSON).
		return string(v[1 : len(v)-1]), nil
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return "", fmt.Errorf("%w: want a string: %v", errScan, err)
	}
	return s, nil
}

// optString returns the string member key: "" when absent or null, an error when present
// and not a string.
func optString(ms []member, b []byte, key string) (string, error) {
	sp, ok := find(ms, b, key)
	if !ok {
		return "", nil
	}
	return stringAt(b, sp)
}

// splice returns b with the spans (sorted, not overlapping) replaced by the values.
func splice(b []byte, spans []span, values [][]byte) []byte {
	n := len(b)
	for i, sp := range spans {
		n += len(values[i]) - (sp.end - sp.start)
	}
	out := make([]byte, 0, n)
	at := 0
	for i, sp := range spans {
		out = append(out, b[at:sp.start]...)
		out = append(out, values[i]...)
		at = sp.end
	}
	return append(out, b[at:]...)
}

// quote returns s as a JSON string.
func quote(s string) []byte {
	q, _ := json.Marshal(s) // a string always marshals
	return q
}
