package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/shardline/kinesis/checkpoint"
	ddbstore "github.com/shardline/kinesis/checkpoint/dynamodb"
	redisstore "github.com/shardline/kinesis/checkpoint/redis"
)

const storeHelp = `Store URLs name the checkpoint store a group keeps its leases and positions in:
  redis://[USER:PASSWORD@]HOST:PORT[/DB][?prefix=P]    Redis (prefix: the store's key prefix,
                                                       default "shardline")
  rediss://...                                         Redis over TLS
  dynamodb://TABLE[?endpoint=URL]                      a DynamoDB table (endpoint: default
                                                       AWS_ENDPOINT_URL_DYNAMODB, the local
                                                       stack's with --local, or AWS)
Other go-redis URL options (dial_timeout, read_timeout, ...) pass through.`

// storeSpec is a parsed store URL.
type storeSpec struct {
	kind     string // "redis" or "dynamodb"
	redis    *goredis.Options
	prefix   string
	table    string
	endpoint string // DynamoDB endpoint from the URL, "" for the default
	display  string // the URL without its password, for messages
}

// parseStoreURL reads a store URL (see storeHelp). Errors are usage errors.
func parseStoreURL(raw string) (storeSpec, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme == "" {
		return storeSpec{}, usagef("bad store URL %q: want redis://HOST:PORT/DB, rediss://... or dynamodb://TABLE", raw)
	}
	q := u.Query()
	display := u.Redacted()
	switch u.Scheme {
	case "redis", "rediss":
		prefix := redisstore.DefaultPrefix
		if q.Has("prefix") {
			prefix = q.Get("prefix")
			q.Del("prefix")
		}
		// go-redis refuses options it does not know: pass it the URL without ours.
		u.RawQuery = q.Encode()
		opts, err := goredis.ParseURL(u.String())
		if err != nil {
			return storeSpec{}, usagef("bad store URL %q: %v", display, err)
		}
		if prefix == "" || strings.ContainsAny(prefix, "{}") {
			return storeSpec{}, usagef("bad store URL %q: the prefix must be non-empty, without '{' or '}'", display)
		}
		// Bound every call: a store that does not answer must end the command, not hang it.
		opts.ContextTimeoutEnabled = true
		opts.MaxRetries = 1
		if !q.Has("dial_timeout") {
			opts.DialTimeout = 3 * time.Second
		}
		return storeSpec{kind: "redis", redis: opts, prefix: prefix, display: display}, nil
	case "dynamodb":
		table := u.Host + strings.TrimSuffix(u.Path, "/")
		if table == "" {
			return storeSpec{}, usagef("bad store URL %q: want dynamodb://TABLE", display)
		}
		endpoint := q.Get("endpoint")
		if endpoint != "" {
			if err := checkURL("store URL endpoint", endpoint); err != nil {
				return storeSpec{}, err
			}
		}
		return storeSpec{kind: "dynamodb", table: table, endpoint: endpoint, display: display}, nil
	case "memory":
		return storeSpec{}, usagef("a memory store lives inside one process: shardline cannot read it; use redis://, rediss:// or dynamodb://")
	}
	return storeSpec{}, usagef("bad store URL %q: unknown scheme %q; want redis, rediss or dynamodb", display, u.Scheme)
}

// openedStore is a checkpoint store and what is needed to close and describe it.
type openedStore struct {
	checkpoint.Store
	name  string // the redacted URL
	local bool   // the store is on this machine
	close func()
}

// openStore connects to the store at raw and checks that it answers, so an unreachable
// store is one clear error before anything else happens.
func (a *app) openStore(ctx context.Context, raw string) (*openedStore, error) {
	spec, err := parseStoreURL(raw)
	if err != nil {
		return nil, err
	}
	switch spec.kind {
	case "redis":
		client := goredis.NewClient(spec.redis)
		st, err := redisstore.New(client, redisstore.WithPrefix(spec.prefix))
		if err != nil {
			_ = client.Close()
			return nil, usagef("store %s: %v", spec.display, err)
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := client.Ping(pctx).Err(); err != nil {
			_ = client.Close()
			return nil, fmt.Errorf("store %s is unreachable: %w", spec.display, err)
		}
		host := spec.redis.Addr
		if i := strings.LastIndex(host, ":"); i >= 0 {
			host = host[:i]
		}
		return &openedStore{Store: st, name: spec.display, local: isLoopbackHost(strings.Trim(host, "[]")),
			close: func() { _ = client.Close() }}, nil
	default:
		client, endpoint, err := a.dynamodb(ctx, spec.endpoint)
		if err != nil {
			return nil, err
		}
		st, err := ddbstore.New(client, spec.table, ddbstore.WithCallTimeout(10*time.Second))
		if err != nil {
			return nil, usagef("store %s: %v", spec.display, err)
		}
		// A read of a row that cannot exist: it finds the table missing or the endpoint
		// unreachable now rather than in the middle of a command.
		probe := checkpoint.ShardKey{Group: "shardline-cli", Stream: "probe", Shard: "probe"}
		if _, err := st.GetLease(ctx, probe); err != nil && !isNotFound(err) {
			return nil, fmt.Errorf("store %s: %w", spec.display, err)
		}
		return &openedStore{Store: st, name: spec.display, local: isLocalURL(endpoint), close: func() {}}, nil
	}
}

func isNotFound(err error) bool { return errors.Is(err, checkpoint.ErrNotFound) }
