package redis

import (
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
		name    string
		client  goredis.UniversalClient
		opts    []Option
		wantErr string
	}{
		{"nil client", nil, nil, "nil client"},
		{"typed nil client", (*goredis.Client)(nil), nil, "nil client"},
		{"typed nil cluster client", (*goredis.ClusterClient)(nil), nil, "nil client"},
		{"nil option", client, []Option{nil}, "nil option"},
		{"empty prefix", client, []Option{WithPrefix("")}, "empty key prefix"},
		{"prefix with {", client, []Option{WithPrefix("a{b")}, "'{' or '}'"},
		{"prefix with }", client, []Option{WithPrefix("a}")}, "'{' or '}'"},
		{"default", client, nil, ""},
		{"custom prefix", client, []Option{WithPrefix("billing:")}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, err := New(c.client, c.opts...)
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("New: %v", err)
			case c.wantErr == "" && s == nil:
				t.Fatal("New returned a nil store and no error")
			case c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("New = %v, want an error containing %q", err, c.wantErr)
			case c.wantErr != "" && s != nil:
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
