package producer

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/shardline/kinesis/internal/shardmap"
)

// Guards against records Kinesis would refuse (the whole PutRecords request with them) being
// accepted, and against records Kinesis accepts being refused: the key rules count UTF-16
// code units as Kinesis does, the size rule counts key + data bytes.
func TestRecordValidation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		p := newProducer(t, f, WithMaxRecordSize(2000), WithAggregationMaxSize(1000))
		maxHash := shardmap.MaxHash.String()
		for _, tc := range []struct {
			name string
			rec  Record
			want error
		}{
			{"empty key", Record{PartitionKey: "", Data: []byte("x")}, ErrEmptyPartitionKey},
			{"invalid UTF-8", Record{PartitionKey: "a\xffb", Data: []byte("x")}, ErrInvalidPartitionKey},
			{"256 ASCII", Record{PartitionKey: strings.Repeat("k", 256)}, nil},
			{"257 ASCII", Record{PartitionKey: strings.Repeat("k", 257)}, ErrPartitionKeyTooLong},
			{"256 three-byte characters (768 bytes)", Record{PartitionKey: strings.Repeat("€", 256)}, nil},
			{"257 three-byte characters", Record{PartitionKey: strings.Repeat("€", 257)}, ErrPartitionKeyTooLong},
			{"128 four-byte characters (256 UTF-16 units)", Record{PartitionKey: strings.Repeat("😀", 128)}, nil},
			{"129 four-byte characters (258 UTF-16 units)", Record{PartitionKey: strings.Repeat("😀", 129)}, ErrPartitionKeyTooLong},
			{"empty data", Record{PartitionKey: "k"}, nil},
			{"key + data at the limit", Record{PartitionKey: "key", Data: make([]byte, 1997)}, nil},
			{"key + data over the limit", Record{PartitionKey: "key", Data: make([]byte, 1998)}, ErrRecordTooLarge},
			{"hash key 0", Record{PartitionKey: "k", ExplicitHashKey: "0"}, nil},
			{"hash key 2^128-1", Record{PartitionKey: "k", ExplicitHashKey: maxHash}, nil},
			{"hash key 2^128", Record{PartitionKey: "k", ExplicitHashKey: "340282366920938463463374607431768211456"}, ErrInvalidExplicitHashKey},
			{"hash key not a number", Record{PartitionKey: "k", ExplicitHashKey: "12a"}, ErrInvalidExplicitHashKey},
			{"hash key negative", Record{PartitionKey: "k", ExplicitHashKey: "-1"}, ErrInvalidExplicitHashKey},
			{"hash key with a leading zero", Record{PartitionKey: "k", ExplicitHashKey: "042"}, ErrInvalidExplicitHashKey},
		} {
			r, err := p.PutRecord(context.Background(), tc.rec)
			if !errors.Is(err, tc.want) || (tc.want == nil) != (r != nil) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
			if err != nil && (!strings.HasPrefix(err.Error(), "producer: ") || IsRetryable(err)) {
				t.Errorf("%s: error %q should say producer: and not be retryable", tc.name, err)
			}
		}
		flush(t, p)
		recs, _ := f.read(t)
		if len(recs) != 7 {
			t.Errorf("consumer reads %d records, want the 7 valid ones", len(recs))
		}
		closeProducer(t, p)
	})
}

// Guards against bad configuration panicking or being accepted silently: every option is
// checked, combinations included, and the error names the option.
func TestConfigValidation(t *testing.T) {
	f := newFake(1)
	for _, tc := range []struct {
		name   string
		opts   []Option
		option string
	}{
		{"nil logger", []Option{WithLogger(nil)}, "WithLogger"},
		{"nil metrics", []Option{WithMetrics(nil)}, "WithMetrics"},
		{"negative linger", []Option{WithLinger(-time.Second)}, "WithLinger"},
		{"no requests in flight", []Option{WithMaxInFlight(0)}, "WithMaxInFlight"},
		{"record size 0", []Option{WithMaxRecordSize(0)}, "WithMaxRecordSize"},
		{"record size over 10 MiB", []Option{WithMaxRecordSize(10<<20 + 1)}, "WithMaxRecordSize"},
		{"no buffer", []Option{WithBufferLimits(0, 1<<30)}, "WithBufferLimits"},
		{"buffer smaller than a record", []Option{WithBufferLimits(10, 1<<19)}, "WithBufferLimits"},
		{"batch of 501", []Option{WithBatchLimits(501, MaxBatchBytes)}, "WithBatchLimits"},
		{"batch of 0 bytes", []Option{WithBatchLimits(500, 0)}, "WithBatchLimits"},
		{"batch over 5 MiB", []Option{WithBatchLimits(500, MaxBatchBytes+1)}, "WithBatchLimits"},
		{"negative record rate", []Option{WithShardRateLimit(-1, 0)}, "WithShardRateLimit"},
		{"negative byte rate", []Option{WithShardRateLimit(0, -1)}, "WithShardRateLimit"},
		{"no attempts", []Option{WithRetryBudget(0, time.Second)}, "WithRetryBudget"},
		{"no TTL", []Option{WithRetryBudget(3, 0)}, "WithRetryBudget"},
		{"no backoff", []Option{WithBackoff(0, time.Second)}, "WithBackoff"},
		{"backoff max below base", []Option{WithBackoff(time.Second, time.Millisecond)}, "WithBackoff"},
		{"no call timeout", []Option{WithCallTimeout(0)}, "WithCallTimeout"},
		{"no call timeout, by the deprecated name", []Option{WithRequestTimeout(-time.Second)}, "WithCallTimeout"},
		{"nil option", []Option{WithLinger(0), nil}, "opts[1]"},
		{"negative refresh", []Option{WithShardMapRefresh(-1)}, "WithShardMapRefresh"},
		{"tiny aggregates", []Option{WithAggregationMaxSize(10)}, "WithAggregationMaxSize"},
		{"aggregates as large as a record", []Option{WithAggregationMaxSize(DefaultMaxRecordSize)}, "WithAggregationMaxSize"},
		{"aggregates larger than a smaller record limit", []Option{WithMaxRecordSize(50_000)}, "WithAggregationMaxSize"},
	} {
		p, err := New(f, testStream, tc.opts...)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Option != tc.option || ce.Package != "producer" || p != nil ||
			!strings.HasPrefix(err.Error(), "producer: invalid "+tc.option+": ") || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: New returned %v, %v; want a ConfigError for %s", tc.name, p, err, tc.option)
		}
	}
	for _, tc := range []struct {
		name   string
		client API
		stream string
		option string
	}{
		{"nil client", nil, testStream, "client"},
		{"empty stream", f, "", "stream"},
	} {
		_, err := New(tc.client, tc.stream)
		var ce *ConfigError
		if !errors.As(err, &ce) || ce.Option != tc.option || !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v, want a ConfigError for %s", tc.name, err, tc.option)
		}
	}
	// Combinations that are fine.
	for _, opts := range [][]Option{
		{WithAggregation(false), WithMaxRecordSize(50_000), WithBufferLimits(1, 50_000)},
		{WithMaxRecordSize(MaxRecordSizeLimit), WithBufferLimits(1, MaxRecordSizeLimit), WithAggregationMaxSize(MaxRecordSizeLimit - maxKeyBytes)},
		{WithLogger(slog.Default()), WithLinger(0), WithShardRateLimit(0, 0), WithShardMapRefresh(0)},
	} {
		p, err := New(f, testStream, opts...)
		if err != nil {
			t.Errorf("valid options refused: %v", err)
			continue
		}
		closeProducer(t, p)
	}
}

// Guards against records larger than 5 MiB (streams configured for up to 10 MiB) never
// leaving: such an entry must travel alone.
func TestRecordOverBatchLimitTravelsAlone(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake(1)
		p := newProducer(t, f, WithMaxRecordSize(MaxRecordSizeLimit), WithBufferLimits(100, 64<<20))
		w := putN(t, p, 3, 1, 6<<20)
		w.add(t, p, 10, 1, 100)
		flush(t, p)
		checkDelivered(t, f, w.want)
		closeProducer(t, p)
	})
}
