package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"

	"github.com/shardline/kinesis/producer"
)

type putOptions struct {
	key       string
	keyField  string
	format    string
	aggregate bool
	linger    time.Duration
	quiet     bool
}

func newPutCmd(a *app) *cobra.Command {
	var o putOptions
	cmd := &cobra.Command{
		Use:   "put STREAM [FILE...]",
		Short: "Put records from stdin or files through Shardline's producer, one per line or JSON lines",
		Long: `put sends every line of its input as one record, through Shardline's producer: batching,
KPL aggregation (on by default), per-shard rate limits, retries with backoff and a result for
every record. Input is stdin, or the files named ("-" is stdin), read in order.

The partition key is -k KEY for every record, the value of a top-level JSON field with
--key-field (which implies --format jsonl), or a random key per record. With --format jsonl
every line must be a JSON value; it is sent as it is.

A line too large for Kinesis, a line that is not JSON under --format jsonl, a missing
--key-field and a record Kinesis refused are failures: each is reported on stderr with its
file and line, the others are still sent, and put exits 1. While stderr is a terminal a
progress line shows the records sent; a summary is printed at the end.`,
		Example: `  seq 1000 | shardline --local put orders
  shardline put orders events.jsonl --key-field customer_id
  shardline put orders -k tenant-7 --aggregate=false batch1.txt batch2.txt`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usagef("put: missing STREAM (see shardline put --help)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case o.key != "" && o.keyField != "":
				return usagef("put: give -k or --key-field, not both")
			case o.format != "lines" && o.format != "jsonl":
				return usagef("put: --format must be lines or jsonl, got %q", o.format)
			case o.keyField != "":
				o.format = "jsonl"
			}
			files := args[1:]
			if len(files) == 0 {
				files = []string{"-"}
			}
			for _, f := range files {
				if f == "-" {
					continue
				}
				if _, err := os.Stat(f); err != nil {
					return usagef("put: %v", err)
				}
			}
			return a.put(cmd.Context(), args[0], files, o)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&o.key, "key", "k", "", "partition key of every record (default: random per record)")
	f.StringVar(&o.keyField, "key-field", "", "take each record's partition key from this top-level JSON field")
	f.StringVar(&o.format, "format", "lines", "input format: lines (each line is a record) or jsonl (each line a JSON value)")
	f.BoolVar(&o.aggregate, "aggregate", true, "pack records into KPL aggregates (--aggregate=false sends each record plain)")
	f.DurationVar(&o.linger, "linger", 0, "how long a batch may wait to fill (default: the producer's)")
	f.BoolVarP(&o.quiet, "quiet", "q", false, "no progress line")
	return cmd
}

// putSummary is put's final report.
type putSummary struct {
	Stream         string  `json:"stream"`
	Records        int64   `json:"records"` // lines read
	Delivered      int64   `json:"delivered"`
	Failed         int64   `json:"failed"`
	KinesisRecords int64   `json:"kinesis_records"`
	Requests       int64   `json:"requests"`
	Retries        int64   `json:"retries"`
	Throttles      int64   `json:"throttles"`
	Bytes          int64   `json:"bytes"`
	Seconds        float64 `json:"seconds"`
	RecordsPerSec  float64 `json:"records_per_second"`
	// Failures lists the first failures, each with its file and line.
	Failures []putFailure `json:"failures,omitempty"`
}

type putFailure struct {
	File  string `json:"file"`
	Line  int    `json:"line"`
	Error string `json:"error"`
}

// maxReportedFailures bounds the failures listed one by one; the count covers them all.
const maxReportedFailures = 20

// failures collects per-record failures from the reading goroutine and the results.
type failures struct {
	mu    sync.Mutex
	n     int64
	first []putFailure
	out   io.Writer
}

func (f *failures) add(file string, line int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	if len(f.first) < maxReportedFailures {
		pf := putFailure{File: file, Line: line, Error: err.Error()}
		f.first = append(f.first, pf)
		fmt.Fprintf(f.out, "put: %s:%d: %s\n", file, line, pf.Error)
	} else if len(f.first) == maxReportedFailures {
		f.first = append(f.first[:maxReportedFailures:maxReportedFailures], putFailure{}) // marks "more"
		fmt.Fprintln(f.out, "put: more failures; only the count is kept from here on")
	}
}

func (a *app) put(ctx context.Context, stream string, files []string, o putOptions) error {
	client, err := a.kinesis(ctx)
	if err != nil {
		return err
	}
	popts := []producer.Option{producer.WithAggregation(o.aggregate)}
	if o.linger > 0 {
		popts = append(popts, producer.WithLinger(o.linger))
	}
	p, err := producer.New(client, stream, popts...)
	if err != nil {
		return err
	}
	// The stream must exist before anything is read: a missing stream is one clear error.
	readyCtx, cancelReady := context.WithTimeout(ctx, 30*time.Second)
	err = p.Ready(readyCtx)
	cancelReady()
	if err != nil {
		_ = p.Close(context.Background())
		return fmt.Errorf("put %s: %w", stream, err)
	}
	fails := &failures{out: a.stderr}
	began := time.Now()
	var lines, bytesSent int64
	// One goroutine waits for the results in the order they were put (they complete in about
	// that order); the bounded channel holds the records in between.
	type putRecord struct {
		res  *producer.Result
		file string
		line int
	}
	results := make(chan putRecord, 4096)
	var pending sync.WaitGroup
	pending.Go(func() {
		for r := range results {
			// The producer reports every record exactly once: delivered or why not.
			if _, err := r.res.Wait(context.WithoutCancel(ctx)); err != nil {
				fails.add(r.file, r.line, err)
			}
		}
	})
	progress := !o.quiet && isTerminal(a.stderr)
	stopProgress := make(chan struct{})
	var progressDone sync.WaitGroup
	if progress {
		progressDone.Go(func() {
			tick := time.NewTicker(250 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-stopProgress:
					fmt.Fprint(a.stderr, "\r\033[K")
					return
				case <-tick.C:
					st := p.Stats()
					fmt.Fprintf(a.stderr, "\r\033[Kput: %d sent, %d failed, %d in flight (%.0f records/s)",
						st.Delivered, st.Failed, st.Buffered, float64(st.Delivered)/time.Since(began).Seconds())
				}
			}
		})
	}

	readErr := func() error {
		for _, name := range files {
			r, closeFn, err := openInput(a.stdin, name)
			if err != nil {
				return err
			}
			err = readRecords(r, func(line int, data []byte) error {
				lines++
				key, err := recordKey(o, data)
				if err != nil {
					fails.add(displayName(name), line, err)
					return nil
				}
				res, err := p.Put(ctx, key, data)
				if err != nil {
					if ctx.Err() != nil {
						return ctx.Err()
					}
					fails.add(displayName(name), line, err)
					return nil
				}
				bytesSent += int64(len(data))
				results <- putRecord{res, displayName(name), line}
				return nil
			})
			closeFn()
			if err != nil {
				return fmt.Errorf("put: read %s: %w", displayName(name), err)
			}
		}
		return nil
	}()
	// Close flushes; bounded so an interrupted put still ends, reporting what it gave up on.
	closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	if ctx.Err() != nil {
		cancel()
		closeCtx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	}
	closeErr := p.Close(closeCtx)
	cancel()
	close(results)
	pending.Wait()
	if progress {
		close(stopProgress)
		progressDone.Wait()
	}
	st := p.Stats()
	elapsed := time.Since(began)
	s := putSummary{
		Stream: stream, Records: lines, Delivered: st.Delivered, Failed: fails.n,
		KinesisRecords: st.KinesisRecords, Requests: st.Requests, Retries: st.Retries, Throttles: st.Throttles,
		Bytes: bytesSent, Seconds: elapsed.Seconds(), RecordsPerSec: float64(st.Delivered) / max(elapsed.Seconds(), 1e-9),
	}
	for _, f := range fails.first {
		if f.File != "" {
			s.Failures = append(s.Failures, f)
		}
	}
	if a.json {
		if err := writeJSON(a.stdout, s); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.stdout, "put %s: %d records, %d delivered, %d failed; %d Kinesis records in %d requests, %d retries; %.1fs (%.0f records/s)\n",
			stream, s.Records, s.Delivered, s.Failed, s.KinesisRecords, s.Requests, s.Retries, s.Seconds, s.RecordsPerSec)
	}
	switch {
	case readErr != nil:
		return readErr
	case s.Failed > 0:
		return fmt.Errorf("put: %d of %d records failed", s.Failed, s.Records)
	case closeErr != nil:
		return fmt.Errorf("put: %w", closeErr)
	}
	return nil
}

func displayName(name string) string {
	if name == "-" {
		return "stdin"
	}
	return name
}

func openInput(stdin io.Reader, name string) (io.Reader, func(), error) {
	if name == "-" {
		return stdin, func() {}, nil
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, nil, usagef("put: %v", err)
	}
	return f, func() { _ = f.Close() }, nil
}

// readRecords calls fn with every line of r (without its line ending), numbered from 1. A
// last line without a newline counts; an empty input has no records. Lines of any length are
// read whole: the producer, not the reader, refuses a record too large for Kinesis.
func readRecords(r io.Reader, fn func(line int, data []byte) error) error {
	br := bufio.NewReaderSize(r, 256<<10)
	for n := 1; ; n++ {
		data, err := br.ReadBytes('\n')
		if len(data) > 0 {
			data = bytes.TrimSuffix(data, []byte("\n"))
			data = bytes.TrimSuffix(data, []byte("\r"))
			if ferr := fn(n, data); ferr != nil {
				return ferr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// recordKey returns the partition key of one input line under o.
func recordKey(o putOptions, data []byte) (string, error) {
	if o.format == "jsonl" && !json.Valid(data) {
		return "", errors.New("not a JSON value")
	}
	switch {
	case o.key != "":
		return o.key, nil
	case o.keyField != "":
		return keyFromJSON(data, o.keyField)
	}
	return randomKey(), nil
}

// keyFromJSON returns the top-level field of a JSON object as a partition key: a string as
// it is, a number or boolean as written.
func keyFromJSON(data []byte, field string) (string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return "", fmt.Errorf("--key-field %s: the line is not a JSON object", field)
	}
	raw, ok := obj[field]
	if !ok {
		return "", fmt.Errorf("--key-field %s: no such field", field)
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		if s == "" {
			return "", fmt.Errorf("--key-field %s: empty string", field)
		}
		return s, nil
	}
	v := strings.TrimSpace(string(raw))
	if _, err := strconv.ParseFloat(v, 64); err == nil || v == "true" || v == "false" {
		return v, nil
	}
	return "", fmt.Errorf("--key-field %s: %s is not a string, number or boolean", field, v)
}

// randomKey is 16 random bytes in hex: records spread evenly over the shards.
func randomKey() string {
	var b [16]byte
	rand.Read(b[:]) // never fails since Go 1.24
	return hex.EncodeToString(b[:])
}
