package metrics

import "strings"

// labelMask says which fields of a Labels value a metric declares.
type labelMask uint8

const (
	maskStream labelMask = 1 << iota
	maskShard
	maskErrorType
	maskOperation
)

// maskOf maps a label name to its bit; unknown names map to 0.
func maskOf(label string) labelMask {
	switch label {
	case LabelStream:
		return maskStream
	case LabelShard:
		return maskShard
	case LabelErrorType:
		return maskErrorType
	case LabelOperation:
		return maskOperation
	}
	return 0
}

// sortedLabelNames lists every label name in byte order: the order keys render them in.
var sortedLabelNames = [...]string{LabelErrorType, LabelOperation, LabelShard, LabelStream}

// declared holds, for every catalog name, the labels the catalog declares for it. It is built
// once from Catalog so that the hot path pays one map lookup, never a scan of Desc.Labels.
var declared = func() map[Name]labelMask {
	m := make(map[Name]labelMask, len(Catalog))
	for _, d := range Catalog {
		var mask labelMask
		for _, l := range d.Labels {
			mask |= maskOf(l)
		}
		m[d.Name] = mask
	}
	return m
}()

// canonical returns l with the fields name does not declare cleared, so that two calls that
// differ only in labels the catalog ignores for name land on the same series. Names outside
// the catalog keep every label. The second result tells whether name is in the catalog.
func canonical(name Name, l Labels) (Labels, labelMask, bool) {
	mask, ok := declared[name]
	if !ok {
		return l, 0, false
	}
	if mask&maskStream == 0 {
		l.Stream = ""
	}
	if mask&maskShard == 0 {
		l.Shard = ""
	}
	if mask&maskErrorType == 0 {
		l.ErrorType = ""
	}
	if mask&maskOperation == 0 {
		l.Operation = ""
	}
	return l, mask, true
}

// Key renders a metric the way [Snapshot] keys it: name{label=value,...} with labels sorted by
// label name. For a catalog name the key holds exactly the labels the catalog declares for it,
// empty values included, whatever else l carries; for any other name it holds the non-empty
// labels of l. A metric without labels renders as its bare name. Values are written verbatim,
// without quoting or escaping: keys are for reading and for comparing in tests, not for parsing.
//
//	Key(ProducerRecordsSent, Labels{Stream: "orders", Shard: "ignored"})
//	// "producer_records_sent_total{stream_name=orders}"
func Key(name Name, l Labels) string {
	l, mask, inCatalog := canonical(name, l)
	return render(name, l, mask, inCatalog)
}

// render formats an already canonical series.
func render(name Name, l Labels, mask labelMask, inCatalog bool) string {
	var b strings.Builder
	n := len(name) + 2
	for _, label := range sortedLabelNames {
		n += len(label) + 2 + len(l.Value(label))
	}
	b.Grow(n)
	b.WriteString(string(name))
	first := true
	for _, label := range sortedLabelNames {
		v := l.Value(label)
		if inCatalog && mask&maskOf(label) == 0 || !inCatalog && v == "" {
			continue
		}
		if first {
			b.WriteByte('{')
			first = false
		} else {
			b.WriteByte(',')
		}
		b.WriteString(label)
		b.WriteByte('=')
		b.WriteString(v)
	}
	if !first {
		b.WriteByte('}')
	}
	return b.String()
}
