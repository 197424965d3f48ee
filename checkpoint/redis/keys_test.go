package redis

import (
	"strings"
	"testing"
)

// clusterTag returns the part of key that Redis Cluster hashes, by the rule of the cluster
// specification: the bytes between the first '{' and the first '}' after it, when there are
// any; the whole key otherwise.
func clusterTag(key string) string {
	open := strings.IndexByte(key, '{')
	if open < 0 {
		return key
	}
	end := strings.IndexByte(key[open+1:], '}')
	if end <= 0 {
		return key
	}
	return key[open+1 : open+1+end]
}

// Guards against keys of one group and stream landing in different cluster slots (a script
// touching a row and its index would fail with CROSSSLOT), whatever characters the names hold.
func TestKeysShareOneHashTag(t *testing.T) {
	ks := newKeyspace("shardline")
	names := [][2]string{
		{"group", "stream"},
		{"g{x}", "s}"},
		{"}", "{"},
		{"a/b", "c:d"},
		{"%7D", "%"},
		{"{}", "{}"},
	}
	for _, n := range names {
		tag := ks.tag(n[0], n[1])
		keys := []string{
			leaseKey(tag, "shardId-000000000000"), leaseKey(tag, "{weird}shard"), leaseIndex(tag),
			workerKey(tag, "worker-1"), workerKey(tag, "}{"), workerIndex(tag),
		}
		want := clusterTag(keys[0])
		if want == keys[0] || want == "" {
			t.Fatalf("group %q stream %q: key %q has no hash tag", n[0], n[1], keys[0])
		}
		for _, k := range keys[1:] {
			if got := clusterTag(k); got != want {
				t.Errorf("group %q stream %q: key %q hashes on %q, want %q", n[0], n[1], k, got, want)
			}
		}
	}
}

// Guards against two different (group, stream) pairs sharing rows: with a naive
// "group/stream" tag, ("a/b", "c") and ("a", "b/c") would be the same keys, and a '}' in a
// name would end the hash tag early.
func TestTagsAreUnambiguous(t *testing.T) {
	ks := newKeyspace("p")
	pairs := [][2]string{
		{"a/b", "c"}, {"a", "b/c"},
		{"a:b", "c"}, {"a", "b:c"},
		{"a}", "b"}, {"a", "}b"},
		{"a{", "b"}, {"a", "{b"},
		{"a%2Fb", "c"}, {"a%", "2Fb/c"},
		{"a%25", "b"}, {"a%", "25b"},
	}
	seen := make(map[string][2]string)
	for _, p := range pairs {
		tag := ks.tag(p[0], p[1])
		if other, dup := seen[tag]; dup {
			t.Errorf("group/stream %q and %q share the tag %q", p, other, tag)
		}
		seen[tag] = p
		inner := clusterTag(leaseKey(tag, "s"))
		if strings.Count(inner, "/") != 1 || strings.ContainsAny(inner, "{}:") {
			t.Errorf("group/stream %q: hash tag %q is not one encoded group, '/', one encoded stream", p, inner)
		}
	}
}

// Guards against the prefix and the rest of a key running together ("shardline{g/s}") or
// getting a doubled separator from a prefix that ends with ':'.
func TestKeyspacePrefix(t *testing.T) {
	for prefix, want := range map[string]string{
		"shardline":   "shardline:{g/s}:lease:x",
		"shardline:":  "shardline:{g/s}:lease:x",
		"a:b":         "a:b:{g/s}:lease:x",
		"test:run-1:": "test:run-1:{g/s}:lease:x",
	} {
		if got := leaseKey(newKeyspace(prefix).tag("g", "s"), "x"); got != want {
			t.Errorf("prefix %q: lease key %q, want %q", prefix, got, want)
		}
	}
}
