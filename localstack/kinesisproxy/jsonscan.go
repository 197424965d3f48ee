package kinesisproxy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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
// refused rather than resolved one way or another.
func scanObject(b []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := expectDelim(dec, '{'); err != nil {
		return nil, err
	}
	var ms []member
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errScan, err)
		}
		key, _ := tok.(string)
		for _, m := range ms {
			if m.key == key {
				return nil, fmt.Errorf("%w: duplicate key %q", errScan, key)
			}
		}
		sp, err := nextValue(dec, b)
		if err != nil {
			return nil, err
		}
		ms = append(ms, member{key: key, span: sp})
	}
	return ms, expectEnd(dec, b, '}')
}

// scanArray returns the element spans of the JSON array that b holds.
func scanArray(b []byte) ([]span, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := expectDelim(dec, '['); err != nil {
		return nil, err
	}
	var out []span
	for dec.More() {
		sp, err := nextValue(dec, b)
		if err != nil {
			return nil, err
		}
		out = append(out, sp)
	}
	return out, expectEnd(dec, b, ']')
}

func expectDelim(dec *json.Decoder, want json.Delim) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %v", errScan, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return fmt.Errorf("%w: want %q, got %v", errScan, want, tok)
	}
	return nil
}

// expectEnd consumes the closing delimiter and checks that only whitespace follows.
func expectEnd(dec *json.Decoder, b []byte, want json.Delim) error {
	if err := expectDelim(dec, want); err != nil {
		return err
	}
	if len(bytes.TrimLeft(b[dec.InputOffset():], " \t\r\n")) != 0 {
		return fmt.Errorf("%w: data after the top-level value", errScan)
	}
	return nil
}

// nextValue reads the next value and returns where it sits in b.
func nextValue(dec *json.Decoder, b []byte) (span, error) {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return span{}, fmt.Errorf("%w: %v", errScan, err)
	}
	end := int(dec.InputOffset())
	start := end - len(raw)
	// The decoder hands back the value's own bytes; check rather than trust it, since the
	// spans are used to cut the body.
	if start < 0 || end > len(b) || !bytes.Equal(b[start:end], raw) {
		return span{}, fmt.Errorf("%w: value offsets do not match", errScan)
	}
	return span{start: start, end: end}, nil
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
