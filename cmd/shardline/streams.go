package main

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/spf13/cobra"

	"github.com/shardline/kinesis/internal/shardmap"
)

func newStreamsCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "streams",
		Aliases: []string{"list"},
		Short:   "List the streams of the account and region",
		Example: `  shardline streams --region eu-west-1
  shardline --local streams --json`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.streams(cmd.Context()) },
	}
}

// streamRow is one stream in the streams listing.
type streamRow struct {
	Name    string    `json:"name"`
	Status  string    `json:"status"`
	Mode    string    `json:"mode,omitempty"`
	Created time.Time `json:"created,omitzero"`
}

func (a *app) streams(ctx context.Context) error {
	client, err := a.kinesis(ctx)
	if err != nil {
		return err
	}
	var rows []streamRow
	p := kinesis.NewListStreamsPaginator(client, &kinesis.ListStreamsInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list streams: %w", err)
		}
		summarised := map[string]bool{}
		for _, s := range out.StreamSummaries {
			r := streamRow{Name: aws.ToString(s.StreamName), Status: string(s.StreamStatus)}
			if s.StreamModeDetails != nil {
				r.Mode = string(s.StreamModeDetails.StreamMode)
			}
			if s.StreamCreationTimestamp != nil {
				r.Created = s.StreamCreationTimestamp.UTC()
			}
			summarised[r.Name] = true
			rows = append(rows, r)
		}
		// Engines that predate StreamSummaries return names only.
		for _, n := range out.StreamNames {
			if !summarised[n] {
				rows = append(rows, streamRow{Name: n})
			}
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].Name < rows[j].Name })
	if a.json {
		if rows == nil {
			rows = []streamRow{}
		}
		return writeJSON(a.stdout, rows)
	}
	t := newTable(a.stdout, "STREAM", "STATUS", "MODE", "CREATED")
	for _, r := range rows {
		created := "-"
		if !r.Created.IsZero() {
			created = r.Created.Format(time.RFC3339)
		}
		t.row(r.Name, dash(r.Status), dash(r.Mode), created)
	}
	return t.flush()
}

func newDescribeCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "describe STREAM",
		Short: "Show a stream: status, retention, encryption, shards with hash ranges and lineage, consumers",
		Long: `describe shows a stream's status, retention, encryption and mode, every shard the stream
still lists (open ones and closed parents within retention) with its hash-key range, its
parents and its sequence-number range, and the registered stream consumers (enhanced fan-out).`,
		Example: `  shardline describe orders
  shardline --local describe orders --json | jq '.shards[] | select(.open)'`,
		Args: exactArgs("STREAM"),
		RunE: func(cmd *cobra.Command, args []string) error { return a.describe(cmd.Context(), args[0]) },
	}
}

// description is what describe prints.
type description struct {
	Stream          string        `json:"stream"`
	ARN             string        `json:"arn"`
	Status          string        `json:"status"`
	Mode            string        `json:"mode,omitempty"`
	RetentionHours  int32         `json:"retention_hours"`
	Encryption      string        `json:"encryption"`
	KeyID           string        `json:"key_id,omitempty"`
	Created         time.Time     `json:"created,omitzero"`
	OpenShards      int           `json:"open_shards"`
	ClosedShards    int           `json:"closed_shards"`
	Shards          []shardRow    `json:"shards"`
	Consumers       []consumerRow `json:"consumers"`
	ConsumersError  string        `json:"consumers_error,omitempty"`
	ConsumerCount   int32         `json:"consumer_count"`
	EnhancedMetrics []string      `json:"enhanced_metrics,omitempty"`
}

type shardRow struct {
	ID             string `json:"shard_id"`
	Open           bool   `json:"open"`
	Parent         string `json:"parent,omitempty"`
	AdjacentParent string `json:"adjacent_parent,omitempty"`
	HashStart      string `json:"hash_key_start"`
	HashEnd        string `json:"hash_key_end"`
	SequenceStart  string `json:"sequence_start,omitempty"`
	SequenceEnd    string `json:"sequence_end,omitempty"`
}

type consumerRow struct {
	Name    string    `json:"name"`
	Status  string    `json:"status"`
	ARN     string    `json:"arn"`
	Created time.Time `json:"created,omitzero"`
}

func shardRows(shards []types.Shard) []shardRow {
	rows := make([]shardRow, 0, len(shards))
	for _, s := range shards {
		r := shardRow{
			ID:             aws.ToString(s.ShardId),
			Open:           shardmap.IsOpen(s),
			Parent:         aws.ToString(s.ParentShardId),
			AdjacentParent: aws.ToString(s.AdjacentParentShardId),
		}
		if s.HashKeyRange != nil {
			r.HashStart = aws.ToString(s.HashKeyRange.StartingHashKey)
			r.HashEnd = aws.ToString(s.HashKeyRange.EndingHashKey)
		}
		if s.SequenceNumberRange != nil {
			r.SequenceStart = aws.ToString(s.SequenceNumberRange.StartingSequenceNumber)
			r.SequenceEnd = aws.ToString(s.SequenceNumberRange.EndingSequenceNumber)
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ID < rows[j].ID })
	return rows
}

func (a *app) describe(ctx context.Context, stream string) error {
	client, err := a.kinesis(ctx)
	if err != nil {
		return err
	}
	sum, err := client.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
	if err != nil {
		return fmt.Errorf("describe %s: %w", stream, err)
	}
	s := sum.StreamDescriptionSummary
	d := description{
		Stream: aws.ToString(s.StreamName), ARN: aws.ToString(s.StreamARN),
		Status: string(s.StreamStatus), RetentionHours: aws.ToInt32(s.RetentionPeriodHours),
		Encryption: string(s.EncryptionType), KeyID: aws.ToString(s.KeyId),
		ConsumerCount: aws.ToInt32(s.ConsumerCount), Consumers: []consumerRow{},
	}
	if d.Encryption == "" {
		d.Encryption = string(types.EncryptionTypeNone)
	}
	if s.StreamModeDetails != nil {
		d.Mode = string(s.StreamModeDetails.StreamMode)
	}
	if s.StreamCreationTimestamp != nil {
		d.Created = s.StreamCreationTimestamp.UTC()
	}
	for _, m := range s.EnhancedMonitoring {
		for _, n := range m.ShardLevelMetrics {
			d.EnhancedMetrics = append(d.EnhancedMetrics, string(n))
		}
	}
	shards, err := shardmap.List(ctx, client, stream, nil)
	if err != nil {
		return fmt.Errorf("describe %s: %w", stream, err)
	}
	d.Shards = shardRows(shards)
	for _, r := range d.Shards {
		if r.Open {
			d.OpenShards++
		} else {
			d.ClosedShards++
		}
	}
	// Consumers are optional: engines without enhanced fan-out refuse the call.
	cp := kinesis.NewListStreamConsumersPaginator(client, &kinesis.ListStreamConsumersInput{StreamARN: s.StreamARN})
	for cp.HasMorePages() {
		out, err := cp.NextPage(ctx)
		if err != nil {
			d.ConsumersError = explain(err)
			break
		}
		for _, c := range out.Consumers {
			row := consumerRow{Name: aws.ToString(c.ConsumerName), Status: string(c.ConsumerStatus), ARN: aws.ToString(c.ConsumerARN)}
			if c.ConsumerCreationTimestamp != nil {
				row.Created = c.ConsumerCreationTimestamp.UTC()
			}
			d.Consumers = append(d.Consumers, row)
		}
	}
	if a.json {
		return writeJSON(a.stdout, d)
	}
	return printDescription(a, d)
}

func printDescription(a *app, d description) error {
	w := a.stdout
	kv := newTable(w)
	kv.row("Stream:", d.Stream)
	kv.row("ARN:", d.ARN)
	kv.row("Status:", d.Status)
	if d.Mode != "" {
		kv.row("Mode:", d.Mode)
	}
	kv.row("Retention:", fmt.Sprintf("%d hours", d.RetentionHours))
	enc := d.Encryption
	if d.KeyID != "" {
		enc += " (" + d.KeyID + ")"
	}
	kv.row("Encryption:", enc)
	if !d.Created.IsZero() {
		kv.row("Created:", d.Created.Format(time.RFC3339))
	}
	kv.row("Shards:", fmt.Sprintf("%d open, %d closed", d.OpenShards, d.ClosedShards))
	if err := kv.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	t := newTable(w, "SHARD", "STATE", "PARENTS", "HASH KEY RANGE", "SEQUENCE RANGE")
	for _, r := range d.Shards {
		state := "open"
		if !r.Open {
			state = "closed"
		}
		parents := r.Parent
		if r.AdjacentParent != "" {
			parents += "+" + r.AdjacentParent
		}
		seq := r.SequenceStart + "-"
		if r.SequenceEnd != "" {
			seq += r.SequenceEnd
		}
		t.row(r.ID, state, dash(parents), r.HashStart+"-"+r.HashEnd, seq)
	}
	if err := t.flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	switch {
	case d.ConsumersError != "":
		fmt.Fprintf(w, "Consumers: unknown (%s)\n", d.ConsumersError)
	case len(d.Consumers) == 0:
		fmt.Fprintln(w, "Consumers: none registered")
	default:
		fmt.Fprintln(w, "Consumers:")
		ct := newTable(w, "  NAME", "STATUS", "CREATED")
		for _, c := range d.Consumers {
			ct.row("  "+c.Name, c.Status, timeText(c.Created))
		}
		return ct.flush()
	}
	return nil
}
