package redis

import (
	"errors"
	"strings"
	"testing"

	goredis "github.com/redis/go-redis/v9"
)

// Guards against New accepting configurations that fail later: a nil client (or a typed nil
// pointer inside the interface, which panics on first use), an empty prefix, and a prefix
// with a brace, which would become the Redis Cluster hash tag of every key and put all groups
// in one slot while breaking the per-group tag.
func TestNewValidates(t *testing.T) {
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"}) // never dialled: New does no I/O
	t.Cleanup(func() { _ = client.Close() })

	cases := []struct {
		name   string
		client goredis.UniversalClient
		opts   []Option
		option string // the ConfigError's option; "" for a valid configuration
	}{
		{"nil client", nil, nil, "client"},
		{"typed nil client", (*goredis.Client)(nil), nil, "client"},
		{"typed nil cluster client", (*goredis.ClusterClient)(nil), nil, "client"},
		{"nil option", client, []Option{nil}, "opts[0]"},
		{"empty prefix", client, []Option{WithPrefix("")}, "WithPrefix"},
		{"prefix with {", client, []Option{WithPrefix("a{b")}, "WithPrefix"},
		{"prefix with }", client, []Option{WithPrefix("a}")}, "WithPrefix"},
		{"default", client, nil, ""},
		{"custom prefix", client, []Option{WithPrefix("billing:")}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(c.client, c.opts...)
			var ce *ConfigError
			switch {
			case c.option == "" && err != nil:
				t.Fatalf("New: %v", err)
			case c.option == "" && s == nil:
				t.Fatal("New returned a nil store and no error")
			case c.option != "" && (!errors.Is(err, ErrInvalidConfig) || !errors.As(err, &ce) || ce.Option != c.option ||
				!strings.HasPrefix(err.Error(), "checkpoint/redis: invalid "+c.option+": ")):
				t.Fatalf("New = %v, want a ConfigError for %s", err, c.option)
			case c.option != "" && s != nil:
				t.Fatal("New returned a store with its error")
			}
		})
	}
}

// Guards against the default prefix drifting from the documented DefaultPrefix.
func TestDefaultPrefix(t *testing.T) {
	client := goredis.NewClient(&goredis.Options{Addr: "127.0.0.1:1"})
	t.Cleanup(func() { _ = client.Close() })
	s, err := New(client)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := s.keys.tag("g", "s"), DefaultPrefix+":{g/s}"; got != want {
		t.Errorf("default tag %q, want %q", got, want)
	}
}
