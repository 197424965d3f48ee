package wire

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// gen writes Kinesis responses the way a server might: members in any order, any
// whitespace, members the codec does not know, escapes in strings.
type gen struct {
	r *rand.Rand
	b bytes.Buffer
}

func newGen(seed uint64) *gen { return &gen{r: rand.New(rand.NewPCG(seed, 7))} }

func (g *gen) ws() {
	if g.r.IntN(4) == 0 {
		g.b.WriteString([]string{" ", "\n", "\t ", "\r\n  "}[g.r.IntN(4)])
	}
}

func (g *gen) tok(s string) { g.ws(); g.b.WriteString(s); g.ws() }

// object writes the members in a random order, with an unknown member now and then.
func (g *gen) object(members map[string]func()) {
	names := make([]string, 0, len(members)+1)
	for k := range members {
		names = append(names, k)
	}
	if g.r.IntN(5) == 0 {
		names = append(names, "Unknown")
	}
	g.r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
	g.tok("{")
	for i, k := range names {
		if i > 0 {
			g.tok(",")
		}
		g.str(k)
		g.tok(":")
		if f := members[k]; f != nil {
			f()
		} else {
			g.unknown(0)
		}
	}
	g.tok("}")
}

func (g *gen) unknown(depth int) {
	switch n := g.r.IntN(7); {
	case n == 0 && depth < 3:
		g.object(map[string]func(){"a": func() { g.unknown(depth + 1) }, "b\\\"": func() { g.unknown(depth + 1) }})
	case n == 1 && depth < 3:
		g.tok("[")
		g.unknown(depth + 1)
		g.tok(",")
		g.unknown(depth + 1)
		g.tok("]")
	case n == 2:
		g.tok("-12.5e+3")
	case n == 3:
		g.tok("true")
	case n == 4:
		g.tok("null")
	default:
		g.str("x\\u00e9\\\"y")
	}
}

// str writes s as a JSON string token as is (s must be valid inside quotes).
func (g *gen) str(s string) {
	g.ws()
	g.b.WriteByte('"')
	g.b.WriteString(s)
	g.b.WriteByte('"')
	g.ws()
}

// text writes v as a JSON string, escaped one of the ways servers escape.
func (g *gen) text(v string) {
	g.ws()
	switch g.r.IntN(3) {
	case 0:
		b, _ := json.Marshal(v) // escapes <, > and & too
		g.b.Write(b)
	case 1:
		g.b.WriteString(string(appendString(nil, v)))
	default:
		// every character escaped as \uXXXX (surrogate pairs beyond the BMP)
		b, _ := json.Marshal(v)
		var s string
		_ = json.Unmarshal(b, &s)
		g.b.WriteByte('"')
		for _, r := range s {
			if r > 0xFFFF {
				r -= 0x10000
				fmt.Fprintf(&g.b, "\\u%04x\\u%04x", 0xD800+(r>>10), 0xDC00+(r&0x3FF))
				continue
			}
			fmt.Fprintf(&g.b, "\\u%04X", r)
		}
		g.b.WriteByte('"')
	}
	g.ws()
}

func (g *gen) key() string {
	switch g.r.IntN(6) {
	case 0:
		return "clé-ü-\u2028-😀"
	case 1:
		return "a\"b\\c\n\t\x01"
	case 2:
		return strings.Repeat("k", 1+g.r.IntN(256))
	case 3:
		return ""
	default:
		return fmt.Sprintf("user-%d", g.r.IntN(1000))
	}
}

func (g *gen) data(max int) []byte {
	n := 0
	switch g.r.IntN(10) {
	case 0:
	case 1:
		n = 1 + g.r.IntN(3)
	case 2:
		n = g.r.IntN(max + 1)
	default:
		n = g.r.IntN(min(200, max) + 1)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(g.r.Uint32())
	}
	return b
}

func (g *gen) blob(d []byte) {
	enc := base64.StdEncoding.EncodeToString(d)
	if g.r.IntN(8) == 0 {
		enc = strings.ReplaceAll(enc, "/", `\/`) // a legal escape some encoders use
	}
	g.str(enc)
}

func (g *gen) seq() string {
	return fmt.Sprintf("4959%052d", g.r.Uint64())
}

func (g *gen) timestamp() {
	sec := 1.7e9 + float64(g.r.IntN(1e8))
	switch g.r.IntN(4) {
	case 0:
		g.tok(fmt.Sprintf("%d", int64(sec)))
	case 1:
		g.tok(fmt.Sprintf("%.3f", sec+float64(g.r.IntN(1000))/1000))
	case 2:
		g.tok(fmt.Sprintf("%.9E", sec+g.r.Float64()))
	default:
		g.tok(fmt.Sprintf("%v", sec+g.r.Float64()))
	}
}

// getRecords writes a GetRecords response with n records of at most maxData bytes.
func (g *gen) getRecords(n, maxData int) []byte {
	g.b.Reset()
	top := map[string]func(){
		"Records": func() {
			g.tok("[")
			for i := range n {
				if i > 0 {
					g.tok(",")
				}
				g.record(maxData)
			}
			g.tok("]")
		},
	}
	if g.r.IntN(8) != 0 {
		top["NextShardIterator"] = func() { g.str("AAAAAAAAAAH" + strings.Repeat("x/+=", 50)) }
	}
	if g.r.IntN(4) != 0 {
		top["MillisBehindLatest"] = func() { g.tok(fmt.Sprint(g.r.IntN(1 << 40))) }
	}
	if g.r.IntN(6) == 0 {
		top["ChildShards"] = func() {
			g.tok("[")
			g.object(map[string]func(){
				"ShardId":      func() { g.str("shardId-000000000002") },
				"ParentShards": func() { g.tok("["); g.str("shardId-000000000000"); g.tok("]") },
				"HashKeyRange": func() {
					g.object(map[string]func(){
						"StartingHashKey": func() { g.str("0") },
						"EndingHashKey":   func() { g.str("170141183460469231731687303715884105727") },
					})
				},
			})
			g.tok("]")
		}
	}
	g.object(top)
	return bytes.Clone(g.b.Bytes())
}

func (g *gen) record(maxData int) {
	m := map[string]func(){
		"SequenceNumber": func() { g.str(g.seq()) },
		"Data":           func() { g.blob(g.data(maxData)) },
		"PartitionKey":   func() { g.text(g.key()) },
	}
	if g.r.IntN(5) != 0 {
		m["ApproximateArrivalTimestamp"] = g.timestamp
	}
	if g.r.IntN(3) == 0 {
		m["EncryptionType"] = func() { g.str([]string{"KMS", "NONE", "FUTURE"}[g.r.IntN(3)]) }
	}
	g.object(m)
}

// putResponse writes a PutRecords response for n entries, some failed.
func (g *gen) putResponse(n int) []byte {
	g.b.Reset()
	failed := 0
	top := map[string]func(){
		"Records": func() {
			g.tok("[")
			for i := range n {
				if i > 0 {
					g.tok(",")
				}
				if g.r.IntN(4) == 0 {
					failed++
					code := []string{codeThroughput, codeInternal, codeKMS, "SomethingNew"}[g.r.IntN(4)]
					g.object(map[string]func(){
						"ErrorCode":    func() { g.str(code) },
						"ErrorMessage": func() { g.text("Rate exceeded for shard \"shardId-000000000001\"") },
					})
					continue
				}
				g.object(map[string]func(){
					"SequenceNumber": func() { g.str(g.seq()) },
					"ShardId":        func() { g.str(fmt.Sprintf("shardId-%012d", g.r.IntN(4))) },
				})
			}
			g.tok("]")
		},
	}
	if g.r.IntN(3) == 0 {
		top["EncryptionType"] = func() { g.str("KMS") }
	}
	g.object(top)
	// FailedRecordCount last, once the count is known
	b := bytes.TrimRight(g.b.Bytes(), " \t\r\n")
	b = b[:len(b)-1]
	return fmt.Appendf(bytes.Clone(b), `,"FailedRecordCount":%d}`, failed)
}

// putInput makes a PutRecords request of n entries.
func (g *gen) putInput(n, maxData int) *kinesis.PutRecordsInput {
	in := &kinesis.PutRecordsInput{StreamName: aws.String("orders-" + g.key())}
	if g.r.IntN(4) == 0 {
		in.StreamARN = aws.String("arn:aws:kinesis:us-east-1:000000000000:stream/orders")
	}
	for range n {
		e := types.PutRecordsRequestEntry{Data: g.data(maxData), PartitionKey: aws.String(g.key())}
		if g.r.IntN(5) == 0 {
			e.PartitionKey = aws.String("bad utf-8 \xff\xfe end")
		}
		if g.r.IntN(3) == 0 {
			e.ExplicitHashKey = aws.String(fmt.Sprint(g.r.Uint64()))
		}
		in.Records = append(in.Records, e)
	}
	return in
}
