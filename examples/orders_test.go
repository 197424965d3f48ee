package examples_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/shardline/kinesis/localstack"
)

// orderReply is what examples/orders answers: a stored order, or an error.
type orderReply struct {
	code           int
	retryAfter     string
	took           time.Duration
	OrderID        string `json:"order_id"`
	ShardID        string `json:"shard_id"`
	SequenceNumber string `json:"sequence_number"`
	Error          string `json:"error"`
}

func postOrder(base, id string) (orderReply, error) {
	start := time.Now()
	body := fmt.Sprintf(`{"order_id":%q,"customer_id":"customer-%s","amount_cents":1999}`, id, id)
	resp, err := http.Post(base+"/orders", "application/json", strings.NewReader(body))
	if err != nil {
		return orderReply{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := orderReply{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), took: time.Since(start)}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("reply %d %q: %v", resp.StatusCode, b, err)
	}
	return r, nil
}

// Guards the request/response recipe of the README (issue 15) on the shipped program, run
// as its own process against the local stack with a one-record buffer and a one-second
// linger: an order is answered 202 with the shard and sequence number Kinesis stored it at
// (read back from there); while one order waits, others are refused at once with 503 and
// Retry-After rather than queued; and on SIGTERM an order in flight is still answered 202
// (http.Server.Shutdown before Producer.Close), the program exits 0, and new connections are
// refused.
func TestOrdersService(t *testing.T) {
	stack := localstack.Require(t)
	client := localstack.Kinesis(t)
	stream := localstack.NewStream(t, client, 2)
	p := startProcess(t, runDir(t), "orders", binary(t, "orders"), processEnv(stack),
		"-addr", "127.0.0.1:0", "-stream", stream, "-buffer", "1", "-linger", "1s", "-wait", "20s")
	line, err := p.stdoutLine("listening on ", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	base := addrOf(t, line)

	// One order: stored where the reply says.
	r, err := postOrder(base, "o-1")
	if err != nil || r.code != http.StatusAccepted || r.OrderID != "o-1" || r.ShardID == "" || r.SequenceNumber == "" {
		t.Fatalf("POST /orders: %+v, %v; want 202 with the shard and sequence number", r, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	it, err := client.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{
		StreamName: aws.String(stream), ShardId: aws.String(r.ShardID),
		ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: aws.String(r.SequenceNumber),
	})
	if err != nil {
		t.Fatal(err)
	}
	recs, err := client.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs.Records) == 0 || aws.ToString(recs.Records[0].SequenceNumber) != r.SequenceNumber ||
		!bytes.Contains(recs.Records[0].Data, []byte(`"order_id":"o-1"`)) {
		t.Fatalf("the record at %s/%s is not the order: %d records", r.ShardID, r.SequenceNumber, len(recs.Records))
	}

	// Overload: five orders at once into a one-record buffer that a 1 s linger keeps full.
	replies := make([]orderReply, 5)
	errs := make([]error, 5)
	var wg sync.WaitGroup
	for i := range replies {
		wg.Go(func() { replies[i], errs[i] = postOrder(base, fmt.Sprintf("burst-%d", i)) })
	}
	wg.Wait()
	stored, refused := 0, 0
	for i, r := range replies {
		switch {
		case errs[i] != nil:
			t.Errorf("burst order %d: %v", i, errs[i])
		case r.code == http.StatusAccepted && r.SequenceNumber != "":
			stored++
		case r.code == http.StatusServiceUnavailable && r.retryAfter != "" && r.took < 500*time.Millisecond:
			refused++
		default:
			t.Errorf("burst order %d: %+v, want 202 with a sequence number, or 503 with Retry-After at once", i, r)
		}
	}
	if stored == 0 || refused == 0 {
		t.Errorf("burst: %d stored, %d refused; want both with a one-record buffer", stored, refused)
	}

	// Shutdown with an order in flight: its request has begun (headers sent, body still
	// coming) when SIGTERM arrives. http.Server.Shutdown waits for it, the producer is still
	// open when it puts the order, and it is answered 202 once stored; a program that closed
	// the producer first would answer it 503 (ErrClosed).
	pr, pw := io.Pipe()
	inFlight := make(chan orderReply, 1)
	go func() {
		resp, err := http.Post(base+"/orders", "application/json", pr)
		r := orderReply{}
		if err != nil {
			r.Error = err.Error()
		} else {
			defer resp.Body.Close()
			r.code = resp.StatusCode
			_ = json.NewDecoder(resp.Body).Decode(&r)
		}
		inFlight <- r
	}()
	if _, err := io.WriteString(pw, `{"order_id":"last",`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the handler reads the body
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the program is shutting down
	if _, err := io.WriteString(pw, `"customer_id":"customer-last"}`); err != nil {
		t.Fatal(err)
	}
	_ = pw.Close()
	if r := <-inFlight; r.code != http.StatusAccepted || r.SequenceNumber == "" {
		t.Errorf("order in flight at SIGTERM: %+v, want 202 with a sequence number", r)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("orders did not exit within 30 s of SIGTERM")
	}
	if code := p.exitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	want := fmt.Sprintf("shut down: %d orders accepted, %d stored, 0 failed", 2+stored, 2+stored)
	if line, err := p.stdoutLine("shut down: ", time.Second); err != nil || line != want {
		t.Errorf("last line %q (%v), want %q", line, err, want)
	}
	if _, err := postOrder(base, "after"); err == nil || !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("POST after shutdown: %v, want connection refused", err)
	}
}
