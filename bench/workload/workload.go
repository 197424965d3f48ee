// Package workload builds the records every comparison sends and reads: user record i has
// partition key "user-<i mod keys>" and data of a fixed size that starts with i and its key,
// so a reader can count every record exactly once and check where it landed from the data
// alone, whatever happened to the partition key on the way (a8m's aggregates keep only the
// first key of each aggregate).
package workload

import (
	"encoding/binary"
	"fmt"
	"strconv"
)

// Spec describes a workload.
type Spec struct {
	Records int // user records
	Size    int // bytes of data per user record
	Keys    int // distinct partition keys, used round robin
}

// String names the workload in tables, e.g. "100 B x 200000 / 1000 keys".
func (s Spec) String() string {
	return fmt.Sprintf("%s over %d keys", SizeName(s.Size), s.Keys)
}

// SizeName prints a record size as "100 B" or "1 KiB".
func SizeName(n int) string {
	if n >= 1024 && n%1024 == 0 {
		return strconv.Itoa(n/1024) + " KiB"
	}
	return strconv.Itoa(n) + " B"
}

// headerLen is the fixed part of the data: the 8-byte index and the key length.
const headerLen = 9

// Validate checks that records of s can hold their header.
func (s Spec) Validate() error {
	switch {
	case s.Records < 1:
		return fmt.Errorf("workload: %d records", s.Records)
	case s.Keys < 1:
		return fmt.Errorf("workload: %d keys", s.Keys)
	case s.Size < headerLen+len(Key(s.Keys-1)):
		return fmt.Errorf("workload: records of %d bytes cannot hold the %d-byte header", s.Size, headerLen+len(Key(s.Keys-1)))
	}
	return nil
}

// Key returns the partition key of key number k.
func Key(k int) string { return "user-" + strconv.Itoa(k) }

// KeyTable returns the partition keys of s, so callers put without formatting a key per record.
func (s Spec) KeyTable() []string {
	keys := make([]string, s.Keys)
	for k := range keys {
		keys[k] = Key(k)
	}
	return keys
}

// Data writes the data of user record i with partition key key into buf (len(buf) is the
// record size) and returns buf. Layout: 8-byte big-endian i, one byte key length, the key,
// then filler.
func Data(buf []byte, i int, key string) []byte {
	binary.BigEndian.PutUint64(buf, uint64(i))
	buf[8] = byte(len(key))
	n := copy(buf[headerLen:], key)
	for j := headerLen + n; j < len(buf); j++ {
		buf[j] = 'x'
	}
	return buf
}

// Index returns the record index stored in data, or -1 if data is too short.
func Index(data []byte) int {
	if len(data) < headerLen {
		return -1
	}
	return int(binary.BigEndian.Uint64(data))
}

// KeyOf returns the partition key stored in data (a sub-slice), or nil if data is malformed.
func KeyOf(data []byte) []byte {
	if len(data) < headerLen || len(data) < headerLen+int(data[8]) {
		return nil
	}
	return data[headerLen : headerLen+int(data[8])]
}
