package conventions_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/shardline/kinesis/checkpoint"
	ddbstore "github.com/shardline/kinesis/checkpoint/dynamodb"
	redisstore "github.com/shardline/kinesis/checkpoint/redis"
	"github.com/shardline/kinesis/consumer"
	"github.com/shardline/kinesis/localstack/kinesisproxy"
	shardotel "github.com/shardline/kinesis/metrics/otel"
	shardprom "github.com/shardline/kinesis/metrics/prometheus"
	"github.com/shardline/kinesis/producer"
)

// One error type: these compile only while every package's ConfigError is the same type,
// so one errors.As target catches a configuration error from any of them.
var (
	_ *producer.ConfigError = (*consumer.ConfigError)(nil)
	_ *producer.ConfigError = (*ddbstore.ConfigError)(nil)
	_ *producer.ConfigError = (*redisstore.ConfigError)(nil)
	_ *producer.ConfigError = (*shardprom.ConfigError)(nil)
	_ *producer.ConfigError = (*shardotel.ConfigError)(nil)
	_ *producer.ConfigError = (*kinesisproxy.ConfigError)(nil)
)

// One name for the bound on each call to Kinesis or a store: these compile only while the
// option is called WithCallTimeout everywhere and takes a duration.
var (
	_ func(time.Duration) producer.Option = producer.WithCallTimeout
	_ func(time.Duration) consumer.Option = consumer.WithCallTimeout
	_ func(time.Duration) ddbstore.Option = ddbstore.WithCallTimeout
)

// Guards against the four conventions issue 15 found coming back: every exported
// ErrInvalidConfig is one value, so errors.Is(err, producer.ErrInvalidConfig) also matches a
// consumer's, a store's or a collector's configuration error.
func TestOneSentinel(t *testing.T) {
	for name, err := range map[string]error{
		"consumer":            consumer.ErrInvalidConfig,
		"checkpoint/dynamodb": ddbstore.ErrInvalidConfig,
		"checkpoint/redis":    redisstore.ErrInvalidConfig,
		"shardprom":           shardprom.ErrInvalidConfig,
		"shardotel":           shardotel.ErrInvalidConfig,
		"kinesisproxy":        kinesisproxy.ErrInvalidConfig,
	} {
		if err != producer.ErrInvalidConfig {
			t.Errorf("%s.ErrInvalidConfig is not producer.ErrInvalidConfig", name)
		}
	}
}

// Guards against a constructor reporting bad configuration its own way: each one, given a bad
// option and a nil Option, returns a ConfigError that names its package and the option and
// matches the shared sentinel, and no value.
func TestEveryConstructor(t *testing.T) {
	kin := kinesis.New(kinesis.Options{Region: "us-east-1"})
	ddb := dynamodb.New(dynamodb.Options{Region: "us-east-1"})
	rdb := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"}) // never dialled
	t.Cleanup(func() { _ = rdb.Close() })
	store := checkpoint.NewMemory()
	closeProducer := func(p *producer.Producer) {
		if p != nil {
			_ = p.Close(context.Background())
		}
	}

	for _, tc := range []struct {
		pkg, option string
		build       func() (any, error)
	}{
		{"producer", "WithCallTimeout", func() (any, error) {
			p, err := producer.New(kin, "s", producer.WithCallTimeout(0))
			closeProducer(p)
			return p, err
		}},
		{"producer", "opts[0]", func() (any, error) {
			p, err := producer.New(kin, "s", nil)
			closeProducer(p)
			return p, err
		}},
		{"producer", "stream", func() (any, error) {
			p, err := producer.New(kin, "")
			closeProducer(p)
			return p, err
		}},
		{"consumer", "WithCallTimeout", func() (any, error) {
			return consumer.New(kin, "s", store, consumer.WithGroup("g"), consumer.WithCallTimeout(0))
		}},
		{"consumer", "WithLeaseDuration", func() (any, error) {
			return consumer.New(kin, "s", store, consumer.WithGroup("g"), consumer.WithLeaseDuration(time.Millisecond))
		}},
		{"consumer", "opts[1]", func() (any, error) { return consumer.New(kin, "s", store, consumer.WithGroup("g"), nil) }},
		{"consumer", "store", func() (any, error) { return consumer.New(kin, "s", nil, consumer.WithGroup("g")) }},
		{"checkpoint/dynamodb", "WithCallTimeout", func() (any, error) {
			return ddbstore.New(ddb, "table", ddbstore.WithCallTimeout(-time.Second))
		}},
		{"checkpoint/dynamodb", "opts[0]", func() (any, error) { return ddbstore.New(ddb, "table", nil) }},
		{"checkpoint/dynamodb", "table", func() (any, error) { return ddbstore.New(ddb, "a b") }},
		{"checkpoint/redis", "WithPrefix", func() (any, error) { return redisstore.New(rdb, redisstore.WithPrefix("")) }},
		{"checkpoint/redis", "opts[0]", func() (any, error) { return redisstore.New(rdb, nil) }},
		{"checkpoint/redis", "client", func() (any, error) { return redisstore.New(nil) }},
		{"shardprom", "WithNamespace", func() (any, error) {
			return shardprom.New(prometheus.NewRegistry(), shardprom.WithNamespace("1x"))
		}},
		{"shardprom", "opts[0]", func() (any, error) { return shardprom.New(prometheus.NewRegistry(), nil) }},
		{"shardprom", "reg", func() (any, error) { return shardprom.New(nil) }},
		{"shardotel", "WithNamespace", func() (any, error) {
			return shardotel.New(noop.NewMeterProvider(), shardotel.WithNamespace("1x"))
		}},
		{"shardotel", "opts[0]", func() (any, error) { return shardotel.New(noop.NewMeterProvider(), nil) }},
		{"shardotel", "mp", func() (any, error) { return shardotel.New(nil) }},
		{"kinesisproxy", "Upstream", func() (any, error) {
			return kinesisproxy.Start(context.Background(), kinesisproxy.Config{})
		}},
	} {
		v, err := tc.build()
		var ce *producer.ConfigError
		if !errors.Is(err, producer.ErrInvalidConfig) || !errors.Is(err, consumer.ErrInvalidConfig) || !errors.As(err, &ce) {
			t.Errorf("%s, bad %s: %v; want a ConfigError matching ErrInvalidConfig", tc.pkg, tc.option, err)
			continue
		}
		if ce.Package != tc.pkg || ce.Option != tc.option || !strings.HasPrefix(err.Error(), tc.pkg+": invalid "+tc.option+": ") {
			t.Errorf("%s, bad %s: ConfigError %+v (%q)", tc.pkg, tc.option, ce, err)
		}
		if !isNil(v) {
			t.Errorf("%s, bad %s: returned a value with its error", tc.pkg, tc.option)
		}
	}
}

// isNil reports whether v holds a nil pointer (constructors return typed nils).
func isNil(v any) bool {
	switch v := v.(type) {
	case *producer.Producer:
		return v == nil
	case *consumer.Consumer:
		return v == nil
	case *ddbstore.Store:
		return v == nil
	case *redisstore.Store:
		return v == nil
	case *shardprom.Collector:
		return v == nil
	case *shardotel.Collector:
		return v == nil
	case *kinesisproxy.Proxy:
		return v == nil
	}
	return v == nil
}
