package examples_test

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// delivery is one line of a consumer process's -out file (see examples/consumer).
type delivery struct {
	Shard        string `json:"shard"`
	Sequence     string `json:"sequence"`
	SubSequence  int64  `json:"subsequence"`
	PartitionKey string `json:"partition_key"`
	Data         []byte `json:"data"`
	Worker       string `json:"worker"`
	Delivered    int64  `json:"delivered_ns"` // when the batch reached the handler

	proc int // index of the process whose file holds the line
	line int // index of the line in that file
}

// position is where a record is stored: a consumer duplicate is a position delivered twice.
type position struct {
	shard    string
	sequence string
	sub      int64
}

func (d *delivery) position() position { return position{d.Shard, d.Sequence, d.SubSequence} }

func (p position) String() string { return fmt.Sprintf("%s %s/%d", p.shard, p.sequence, p.sub) }

// recordID returns what examples/producer wrote in the record: its key and per-key counter,
// from data "key-17:000042:xxx". ok is false for data that is not the producer's.
func recordID(data []byte, partitionKey string) (key string, counter int, ok bool) {
	key, rest, found := strings.Cut(string(data), ":")
	if !found || key != partitionKey {
		return "", 0, false
	}
	count, _, found := strings.Cut(rest, ":")
	n, err := strconv.Atoi(count)
	if !found || err != nil || n < 0 {
		return "", 0, false
	}
	return key, n, true
}

// idString names a record as the producer wrote it.
func idString(key string, counter int) string { return fmt.Sprintf("%s:%06d", key, counter) }

// expected returns the records examples/producer writes with -n n -keys keys: record i has
// key key-(i mod keys) and counter i div keys.
func expected(n, keys int) map[string]bool {
	want := make(map[string]bool, n)
	for i := range n {
		want[idString("key-"+strconv.Itoa(i%keys), i/keys)] = true
	}
	return want
}

// outcome is what the consumer processes of one scenario wrote, and what the test knows
// about the process it killed.
type outcome struct {
	n, keys int
	files   [][]delivery // per process, in file order
	names   []string     // process names, for messages
	// killed is the index of the process killed with SIGKILL, or -1.
	killed int
	// heldAtKill are the shards whose lease the killed process held when it died.
	heldAtKill map[string]bool
	// rewoundNs, when not 0, is when the store lost every checkpoint and lease (a Redis
	// without persistence restarted, delivered_ns clock): from then on the group reads each
	// shard again from its start, so each process's order is judged afresh after it.
	rewoundNs int64
}

// verdict is what check found. Every list holds human-readable findings.
type verdict struct {
	deliveries int // lines in every file
	unique     int // distinct produced records delivered
	missing    []string
	unexpected []string // lines that are not a record the producer wrote

	// duplicates counts deliveries of a position delivered before; allowed counts those that
	// are re-deliveries of the killed process's unacknowledged batches; dupBound is the most
	// that can be: the records of the killed process's last batch on every shard it held.
	duplicates, allowed, dupBound int
	badDups                       []string

	// producerDups counts records stored at two positions (a producer retry after a
	// request that timed out but succeeded): not a consumer fault, and not duplicates.
	producerDups int

	fileOrder  []string // per-process order violations
	firstOrder []string // first deliveries out of per-key order across processes
}

// failures lists what violates the guarantees, one line per kind.
func (v *verdict) failures() []string {
	var out []string
	add := func(what string, list []string) {
		if len(list) > 0 {
			out = append(out, fmt.Sprintf("%d %s, e.g. %s", len(list), what, strings.Join(list[:min(5, len(list))], "; ")))
		}
	}
	add("records never delivered", v.missing)
	add("lines that are no produced record", v.unexpected)
	add("duplicates the kill does not explain", v.badDups)
	add("per-process order violations", v.fileOrder)
	add("first deliveries out of per-key order", v.firstOrder)
	return out
}

func (v *verdict) String() string {
	return fmt.Sprintf("%d deliveries, %d unique records, %d missing, %d duplicates (%d re-deliveries of the killed process's last batches, bound %d; %d unexplained), %d stored twice by the producer, %d per-process and %d first-delivery order violations",
		v.deliveries, v.unique, len(v.missing), v.duplicates, v.allowed, v.dupBound, len(v.badDups), v.producerDups, len(v.fileOrder), len(v.firstOrder))
}

// check judges what the consumers delivered against the consumer's guarantees: at least once,
// per-key order, and duplicates only where a crash explains them.
func check(o outcome) *verdict {
	v := &verdict{}
	want := expected(o.n, o.keys)
	type parsed struct {
		*delivery
		key     string
		counter int
		id      string
	}
	var all []parsed
	perFile := make([][]parsed, len(o.files))
	for p, lines := range o.files {
		for i := range lines {
			d := &lines[i]
			d.proc, d.line = p, i
			key, counter, ok := recordID(d.Data, d.PartitionKey)
			id := idString(key, counter)
			if !ok || !want[id] {
				v.unexpected = append(v.unexpected, fmt.Sprintf("%s line %d: key %q data %.30q", o.names[p], i+1, d.PartitionKey, d.Data))
				continue
			}
			pd := parsed{d, key, counter, id}
			all = append(all, pd)
			perFile[p] = append(perFile[p], pd)
		}
		v.deliveries += len(lines)
	}

	// Every produced record at least once.
	got := make(map[string][]position)
	for _, d := range all {
		if !slices.Contains(got[d.id], d.position()) {
			got[d.id] = append(got[d.id], d.position())
		}
	}
	v.unique = len(got)
	for id := range want {
		if got[id] == nil {
			v.missing = append(v.missing, id)
		}
	}
	slices.Sort(v.missing)
	for _, ps := range got {
		v.producerDups += len(ps) - 1
	}

	// Duplicates. With a checkpoint after every batch, a worker that dies has handled at
	// most one batch per shard it holds that no checkpoint covers: the last one it wrote.
	// The next owner delivers exactly those again. So a position may be delivered twice only
	// when one delivery is in the killed process's last batch of a shard it held at its
	// death (a batch is the lines of one shard with one delivered_ns), and the other is a
	// later delivery by another process. Anything else is a duplicate the guarantee does not
	// allow: graceful handoffs and shutdowns checkpoint first.
	lastBatch := make(map[string]int64) // shard -> delivered_ns of the killed process's last batch
	if o.killed >= 0 {
		for _, d := range o.files[o.killed] {
			lastBatch[d.Shard] = max(lastBatch[d.Shard], d.Delivered)
		}
		for _, d := range o.files[o.killed] {
			if o.heldAtKill[d.Shard] && d.Delivered == lastBatch[d.Shard] {
				v.dupBound++
			}
		}
	}
	byPos := make(map[position][]parsed)
	for _, d := range all {
		byPos[d.position()] = append(byPos[d.position()], d)
	}
	for pos, ds := range byPos {
		if len(ds) < 2 {
			continue
		}
		v.duplicates += len(ds) - 1
		if len(ds) == 2 {
			first, again := ds[0], ds[1]
			if again.proc == o.killed {
				first, again = again, first
			}
			if first.proc == o.killed && again.proc != o.killed && o.heldAtKill[pos.shard] &&
				first.Delivered == lastBatch[pos.shard] && again.Delivered > first.Delivered {
				v.allowed++
				continue
			}
		}
		var who []string
		for _, d := range ds {
			who = append(who, fmt.Sprintf("%s line %d", o.names[d.proc], d.line+1))
		}
		v.badDups = append(v.badDups, fmt.Sprintf("%s (%s) delivered %d times: %s", pos, ds[0].id, len(ds), strings.Join(who, ", ")))
	}
	slices.Sort(v.badDups)

	// Order within one process. A process reads a shard in sequence order from the shard's
	// checkpoint, checkpoints never move backwards, a key's records are stored in counter
	// order, and a key moves to a child shard only after its parent ended, which a correct
	// consumer reads first. So the first time a process sees each record, the key's counters
	// strictly increase. What a process sees again (it retook a shard whose checkpoint was
	// behind what it had handled, or the producer stored a record twice) may go back, and is
	// skipped: only a record's first appearance in the file is judged. When the store lost
	// every checkpoint (o.rewoundNs), what comes after is judged on its own: a process may
	// then first see a key's earlier records, which another process handled before.
	for p, lines := range perFile {
		var seen [2]map[string]bool
		var last [2]map[string]int
		for e := range seen {
			seen[e], last[e] = make(map[string]bool), make(map[string]int)
		}
		for _, d := range lines {
			e := 0
			if o.rewoundNs != 0 && d.Delivered >= o.rewoundNs {
				e = 1
			}
			if seen[e][d.id] {
				continue
			}
			seen[e][d.id] = true
			if prev, ok := last[e][d.key]; ok && d.counter <= prev {
				v.fileOrder = append(v.fileOrder, fmt.Sprintf("%s line %d: %s after counter %d", o.names[p], d.line+1, d.id, prev))
			}
			last[e][d.key] = max(last[e][d.key], d.counter)
		}
	}

	// Order across processes. Ordered by the time each batch reached its handler (one clock:
	// every process runs on this host), each record's first delivery must come in its key's
	// counter order: a shard is read by one owner at a time, a new owner starts only after
	// the old one's lease ended (its batches all delivered before), and a child shard starts
	// only after its parents are finished. Re-deliveries are not judged here.
	slices.SortStableFunc(all, func(a, b parsed) int {
		return cmp.Or(cmp.Compare(a.Delivered, b.Delivered), cmp.Compare(a.proc, b.proc), cmp.Compare(a.line, b.line))
	})
	first := make(map[string]bool)
	last := make(map[string]int)
	for _, d := range all {
		if first[d.id] {
			continue
		}
		first[d.id] = true
		if prev, ok := last[d.key]; ok && d.counter <= prev {
			v.firstOrder = append(v.firstOrder, fmt.Sprintf("%s first delivered by %s after counter %d", d.id, o.names[d.proc], prev))
		}
		last[d.key] = max(last[d.key], d.counter)
	}
	return v
}

// rec is a delivery of key-0's record counter, stored at sequence seq of shard, in a batch
// delivered at time at.
func rec(shard string, seq, counter int, at int64) delivery {
	return delivery{
		Shard: shard, Sequence: fmt.Sprint(seq), PartitionKey: "key-0",
		Data: fmt.Appendf(nil, "key-0:%06d:xxxx", counter), Delivered: at,
	}
}

// Guards against a checker that cannot fail: each rule must flag the violation it exists
// for, and accept what the guarantee allows (re-delivery of a killed worker's last batch,
// repeats going back inside one file, records the producer stored twice).
func TestCheck(t *testing.T) {
	held := map[string]bool{"s0": true}
	tests := []struct {
		name    string
		files   [][]delivery
		killed  int
		rewound int64  // outcome.rewoundNs
		want    string // substring of the first failure, "" for none
		check   func(*verdict) error
	}{
		{
			name:   "clean handover",
			files:  [][]delivery{{rec("s0", 1, 0, 1), rec("s0", 2, 1, 1)}, {rec("s0", 3, 2, 5), rec("s0", 4, 3, 5)}},
			killed: -1,
		},
		{
			name:   "missing record",
			files:  [][]delivery{{rec("s0", 1, 0, 1), rec("s0", 2, 1, 1), rec("s0", 4, 3, 2)}},
			killed: -1,
			want:   "1 records never delivered, e.g. key-0:000002",
		},
		{
			name: "killed worker's last batch delivered again",
			files: [][]delivery{
				{rec("s0", 1, 0, 1), rec("s0", 2, 1, 2), rec("s0", 3, 2, 2)},
				{rec("s0", 2, 1, 9), rec("s0", 3, 2, 9), rec("s0", 4, 3, 9)},
			},
			killed: 0,
			check: func(v *verdict) error {
				if v.duplicates != 2 || v.allowed != 2 || v.dupBound != 2 {
					return fmt.Errorf("duplicates %d, allowed %d, bound %d; want 2, 2, 2", v.duplicates, v.allowed, v.dupBound)
				}
				return nil
			},
		},
		{
			name: "killed worker's earlier batch delivered again",
			files: [][]delivery{
				{rec("s0", 1, 0, 1), rec("s0", 2, 1, 2), rec("s0", 3, 2, 3)},
				{rec("s0", 2, 1, 9), rec("s0", 3, 2, 9), rec("s0", 4, 3, 9)},
			},
			killed: 0,
			want:   "1 duplicates the kill does not explain",
		},
		{
			name: "duplicate on a shard the killed worker no longer held",
			files: [][]delivery{
				{rec("s1", 1, 0, 1), rec("s1", 2, 1, 2)},
				{rec("s1", 2, 1, 9), rec("s1", 3, 2, 9), rec("s1", 4, 3, 9)},
			},
			killed: 0,
			want:   "1 duplicates the kill does not explain",
		},
		{
			name: "duplicate without a kill",
			files: [][]delivery{
				{rec("s0", 1, 0, 1), rec("s0", 2, 1, 2)},
				{rec("s0", 2, 1, 9), rec("s0", 3, 2, 9), rec("s0", 4, 3, 9)},
			},
			killed: -1,
			want:   "1 duplicates the kill does not explain",
		},
		{
			name:   "reordered in one file",
			files:  [][]delivery{{rec("s0", 1, 0, 1), rec("s0", 3, 2, 1), rec("s0", 2, 1, 1), rec("s0", 4, 3, 1)}},
			killed: -1,
			want:   "1 per-process order violations",
		},
		{
			// p1 took s0 from p0 at counter 2; the store then lost every row (at 10) and p1
			// read s0 again from its start, seeing counters 0 and 1 for the first time.
			name: "the store lost its checkpoints: a file reads from the start again",
			files: [][]delivery{
				{rec("s0", 1, 0, 1), rec("s0", 2, 1, 1)},
				{rec("s0", 3, 2, 5), rec("s0", 1, 0, 10), rec("s0", 2, 1, 10), rec("s0", 3, 2, 10), rec("s0", 4, 3, 10)},
			},
			killed:  -1,
			rewound: 10,
			want:    "3 duplicates the kill does not explain", // the case bounds them itself
			check: func(v *verdict) error {
				if len(v.fileOrder) != 0 || len(v.firstOrder) != 0 {
					return fmt.Errorf("order violations %q %q, want none after a rewind", v.fileOrder, v.firstOrder)
				}
				return nil
			},
		},
		{
			name: "the same file without the store losing anything",
			files: [][]delivery{
				{rec("s0", 1, 0, 1), rec("s0", 2, 1, 1)},
				{rec("s0", 3, 2, 5), rec("s0", 1, 0, 10), rec("s0", 2, 1, 10), rec("s0", 3, 2, 10), rec("s0", 4, 3, 10)},
			},
			killed: -1,
			want:   "3 duplicates the kill does not explain",
			check: func(v *verdict) error {
				if len(v.fileOrder) != 2 {
					return fmt.Errorf("order violations %q, want 2 (counters 0 and 1 after 2 in p1)", v.fileOrder)
				}
				return nil
			},
		},
		{
			name: "a rewound file reordered after the rewind",
			files: [][]delivery{
				{rec("s0", 1, 0, 10), rec("s0", 3, 2, 10), rec("s0", 2, 1, 10), rec("s0", 4, 3, 10)},
			},
			killed:  -1,
			rewound: 10,
			want:    "1 per-process order violations",
		},
		{
			name:   "first deliveries reordered across processes",
			files:  [][]delivery{{rec("s0", 1, 0, 1), rec("s0", 3, 2, 2), rec("s0", 4, 3, 2)}, {rec("s2", 2, 1, 5)}},
			killed: -1,
			want:   "1 first deliveries out of per-key order, e.g. key-0:000001 first delivered by p1 after counter 3",
		},
		{
			name: "a file going back over records it saw",
			files: [][]delivery{{
				rec("s0", 1, 0, 1), rec("s0", 2, 1, 1), rec("s0", 3, 2, 2),
				rec("s0", 2, 1, 8), rec("s0", 3, 2, 8), rec("s0", 4, 3, 8),
			}},
			killed: -1,
			// Allowed by the order rules, but a duplicate with no kill to explain it.
			want: "2 duplicates the kill does not explain",
		},
		{
			name: "record stored twice by the producer",
			files: [][]delivery{{
				rec("s0", 1, 0, 1), rec("s0", 2, 1, 1), rec("s0", 3, 1, 1), rec("s0", 4, 2, 1), rec("s0", 5, 3, 1),
			}},
			killed: -1,
			check: func(v *verdict) error {
				if v.producerDups != 1 || v.duplicates != 0 {
					return fmt.Errorf("producer duplicates %d, duplicates %d; want 1, 0", v.producerDups, v.duplicates)
				}
				return nil
			},
		},
		{
			name: "foreign record",
			files: [][]delivery{{rec("s0", 1, 0, 1), rec("s0", 2, 1, 1), rec("s0", 3, 2, 1), rec("s0", 4, 3, 1),
				{Shard: "s0", Sequence: "5", PartitionKey: "key-0", Data: []byte("key-9:000001:")}}},
			killed: -1,
			want:   "1 lines that are no produced record",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			names := make([]string, len(tt.files))
			for i := range names {
				names[i] = fmt.Sprintf("p%d", i)
			}
			v := check(outcome{n: 4, keys: 1, files: tt.files, names: names, killed: tt.killed, heldAtKill: held, rewoundNs: tt.rewound})
			fails := v.failures()
			switch {
			case tt.want == "" && len(fails) > 0:
				t.Errorf("failures %q, want none (%s)", fails, v)
			case tt.want != "" && (len(fails) == 0 || !strings.HasPrefix(fails[0], tt.want)):
				t.Errorf("failures %q, want one starting with %q", fails, tt.want)
			}
			if tt.check != nil {
				if err := tt.check(v); err != nil {
					t.Error(err)
				}
			}
		})
	}
}
