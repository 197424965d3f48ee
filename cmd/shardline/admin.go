package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/spf13/cobra"

	"github.com/shardline/kinesis/internal/shardmap"
)

// waitFor bounds how long create, delete and reshard wait for the stream to settle.
const waitFor = 5 * time.Minute

func newCreateCmd(a *app) *cobra.Command {
	var shards int
	var onDemand bool
	cmd := &cobra.Command{
		Use:   "create STREAM",
		Short: "Create a stream and wait until it is ACTIVE (for local development and tests)",
		Example: `  shardline --local create orders --shards 4
  shardline create orders --on-demand --region eu-west-1`,
		Args: exactArgs("STREAM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if shards < 1 && !onDemand {
				return usagef("create: --shards must be at least 1, got %d", shards)
			}
			return a.create(cmd.Context(), args[0], shards, onDemand)
		},
	}
	cmd.Flags().IntVar(&shards, "shards", 1, "number of shards (provisioned mode)")
	cmd.Flags().BoolVar(&onDemand, "on-demand", false, "create the stream in on-demand capacity mode (--shards is ignored)")
	return cmd
}

func (a *app) create(ctx context.Context, stream string, shards int, onDemand bool) error {
	client, err := a.kinesis(ctx)
	if err != nil {
		return err
	}
	in := &kinesis.CreateStreamInput{StreamName: aws.String(stream)}
	if onDemand {
		in.StreamModeDetails = &types.StreamModeDetails{StreamMode: types.StreamModeOnDemand}
	} else {
		in.ShardCount = aws.Int32(int32(shards))
	}
	if _, err := client.CreateStream(ctx, in); err != nil {
		return fmt.Errorf("create %s: %w", stream, err)
	}
	if err := waitActive(ctx, client, stream); err != nil {
		return err
	}
	return a.report(struct {
		Stream string `json:"stream"`
		Shards int    `json:"shards"`
		Status string `json:"status"`
	}{stream, shards, "ACTIVE"}, fmt.Sprintf("created stream %s with %d shards", stream, shards))
}

// report prints v as JSON, or line as text.
func (a *app) report(v any, line string) error {
	if a.json {
		return writeJSON(a.stdout, v)
	}
	_, err := fmt.Fprintln(a.stdout, line)
	return err
}

func waitActive(ctx context.Context, client *kinesis.Client, stream string) error {
	w := kinesis.NewStreamExistsWaiter(client, func(o *kinesis.StreamExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = 2 * time.Second
	})
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream), Limit: aws.Int32(1)}, waitFor); err != nil {
		return fmt.Errorf("wait for %s to be ACTIVE: %w", stream, err)
	}
	return nil
}

func newDeleteCmd(a *app) *cobra.Command {
	var yes, force bool
	cmd := &cobra.Command{
		Use:   "delete STREAM",
		Short: "Delete a stream and wait until it is gone (asks for --yes unless the endpoint is local)",
		Example: `  shardline --local delete orders
  shardline delete orders --yes --region eu-west-1`,
		Args: exactArgs("STREAM"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireYes(yes, a.localKinesisTarget(), "delete stream "+args[0], a.kinesisEndpoint()); err != nil {
				return err
			}
			return a.deleteStream(cmd.Context(), args[0], force)
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm deleting a stream on a non-local endpoint")
	cmd.Flags().BoolVar(&force, "enforce-consumer-deletion", false, "also deregister the stream's enhanced fan-out consumers")
	return cmd
}

func (a *app) deleteStream(ctx context.Context, stream string, force bool) error {
	client, err := a.kinesis(ctx)
	if err != nil {
		return err
	}
	_, err = client.DeleteStream(ctx, &kinesis.DeleteStreamInput{
		StreamName: aws.String(stream), EnforceConsumerDeletion: aws.Bool(force),
	})
	if err != nil {
		return fmt.Errorf("delete %s: %w", stream, err)
	}
	w := kinesis.NewStreamNotExistsWaiter(client, func(o *kinesis.StreamNotExistsWaiterOptions) {
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = 2 * time.Second
	})
	if err := w.Wait(ctx, &kinesis.DescribeStreamInput{StreamName: aws.String(stream), Limit: aws.Int32(1)}, waitFor); err != nil {
		return fmt.Errorf("wait for %s to be deleted: %w", stream, err)
	}
	return a.report(struct {
		Stream  string `json:"stream"`
		Deleted bool   `json:"deleted"`
	}{stream, true}, "deleted stream "+stream)
}

func newReshardCmd(a *app) *cobra.Command {
	var (
		split, at string
		merge     []string
		shards    int
		yes       bool
	)
	cmd := &cobra.Command{
		Use:   "reshard STREAM (--split SHARD [--at HASHKEY] | --merge SHARD SHARD | --shards N)",
		Short: "Split or merge shards, or change the shard count, and wait until ACTIVE (asks for --yes unless local)",
		Long: `reshard changes a stream's shards, for local development and tests of resharding:
  --split SHARD      splits SHARD at the middle of its hash-key range (or at --at HASHKEY)
  --merge A B        merges two adjacent open shards
  --shards N         UpdateShardCount with uniform scaling
It waits until the stream is ACTIVE again and prints the open shards.`,
		Example: `  shardline --local reshard orders --split shardId-000000000000
  shardline --local reshard orders --merge shardId-000000000001 shardId-000000000002
  shardline --local reshard orders --shards 4`,
		Args: func(cmd *cobra.Command, args []string) error {
			// --merge takes two shard IDs; pflag gives it the first, the second lands in args.
			if len(merge) == 1 && len(args) == 2 {
				merge = append(merge, args[1])
				args = args[:1]
			}
			if err := exactArgs("STREAM")(cmd, args); err != nil {
				return err
			}
			n := 0
			for _, set := range []bool{split != "", len(merge) > 0, shards != 0} {
				if set {
					n++
				}
			}
			switch {
			case n != 1:
				return usagef("reshard: give exactly one of --split SHARD, --merge SHARD SHARD or --shards N")
			case len(merge) > 0 && len(merge) != 2:
				return usagef("reshard: --merge takes two shard IDs, got %d", len(merge))
			case shards < 0:
				return usagef("reshard: --shards must be at least 1, got %d", shards)
			case at != "" && split == "":
				return usagef("reshard: --at goes with --split")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := requireYes(yes, a.localKinesisTarget(), "reshard stream "+args[0], a.kinesisEndpoint()); err != nil {
				return err
			}
			return a.reshard(cmd.Context(), args[0], split, at, merge, shards)
		},
	}
	f := cmd.Flags()
	f.StringVar(&split, "split", "", "shard to split")
	f.StringVar(&at, "at", "", "hash key (decimal) where --split starts the upper child (default: the middle of the range)")
	f.StringSliceVar(&merge, "merge", nil, "two adjacent shards to merge: --merge A B or --merge A,B")
	f.IntVar(&shards, "shards", 0, "target number of open shards (UpdateShardCount, uniform scaling)")
	f.BoolVar(&yes, "yes", false, "confirm resharding a stream on a non-local endpoint")
	return cmd
}

func (a *app) reshard(ctx context.Context, stream, split, at string, merge []string, shards int) error {
	client, err := a.kinesis(ctx)
	if err != nil {
		return err
	}
	var action string
	switch {
	case split != "":
		if at == "" {
			at, err = midpoint(ctx, client, stream, split)
			if err != nil {
				return err
			}
		}
		_, err = client.SplitShard(ctx, &kinesis.SplitShardInput{
			StreamName: aws.String(stream), ShardToSplit: aws.String(split), NewStartingHashKey: aws.String(at),
		})
		action = fmt.Sprintf("split %s at hash key %s", split, at)
	case len(merge) == 2:
		_, err = client.MergeShards(ctx, &kinesis.MergeShardsInput{
			StreamName: aws.String(stream), ShardToMerge: aws.String(merge[0]), AdjacentShardToMerge: aws.String(merge[1]),
		})
		action = fmt.Sprintf("merged %s and %s", merge[0], merge[1])
	default:
		_, err = client.UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{
			StreamName: aws.String(stream), TargetShardCount: aws.Int32(int32(shards)), ScalingType: types.ScalingTypeUniformScaling,
		})
		action = fmt.Sprintf("updated the shard count to %d", shards)
	}
	if err != nil {
		return fmt.Errorf("reshard %s: %w", stream, err)
	}
	// Some engines still say ACTIVE right after the call: wait for the shards to change too.
	done := func(list []types.Shard) bool {
		open := map[string]bool{}
		for _, s := range list {
			open[aws.ToString(s.ShardId)] = shardmap.IsOpen(s)
		}
		switch {
		case split != "":
			return !open[split]
		case len(merge) == 2:
			return !open[merge[0]] && !open[merge[1]]
		}
		n := 0
		for _, o := range open {
			if o {
				n++
			}
		}
		return n == shards
	}
	list, err := waitShards(ctx, client, stream, done)
	if err != nil {
		return err
	}
	var open []shardRow
	for _, r := range shardRows(list) {
		if r.Open {
			open = append(open, r)
		}
	}
	if a.json {
		return writeJSON(a.stdout, struct {
			Stream     string     `json:"stream"`
			Action     string     `json:"action"`
			OpenShards []shardRow `json:"open_shards"`
		}{stream, action, open})
	}
	fmt.Fprintf(a.stdout, "%s: %s; %d open shards:\n", stream, action, len(open))
	t := newTable(a.stdout, "  SHARD", "PARENTS", "HASH KEY RANGE")
	for _, r := range open {
		parents := r.Parent
		if r.AdjacentParent != "" {
			parents += "+" + r.AdjacentParent
		}
		t.row("  "+r.ID, dash(parents), r.HashStart+"-"+r.HashEnd)
	}
	return t.flush()
}

// waitShards waits until the stream is ACTIVE and its shard listing satisfies done.
func waitShards(ctx context.Context, client *kinesis.Client, stream string, done func([]types.Shard) bool) ([]types.Shard, error) {
	deadline := time.Now().Add(waitFor)
	for {
		if err := waitActive(ctx, client, stream); err != nil {
			return nil, err
		}
		list, err := shardmap.List(ctx, client, stream, nil)
		if err != nil {
			return nil, fmt.Errorf("reshard %s: %w", stream, err)
		}
		if done(list) {
			return list, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("reshard %s: the shards did not change within %v", stream, waitFor)
		}
		t := time.NewTimer(200 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// midpoint returns the hash key in the middle of shard's range: where --split cuts by default.
func midpoint(ctx context.Context, client *kinesis.Client, stream, shard string) (string, error) {
	list, err := shardmap.List(ctx, client, stream, nil)
	if err != nil {
		return "", fmt.Errorf("reshard %s: %w", stream, err)
	}
	for _, s := range list {
		if aws.ToString(s.ShardId) != shard || s.HashKeyRange == nil {
			continue
		}
		lo, ok1 := new(big.Int).SetString(aws.ToString(s.HashKeyRange.StartingHashKey), 10)
		hi, ok2 := new(big.Int).SetString(aws.ToString(s.HashKeyRange.EndingHashKey), 10)
		if !ok1 || !ok2 {
			return "", fmt.Errorf("reshard %s: shard %s has a malformed hash key range", stream, shard)
		}
		mid := new(big.Int).Add(lo, hi)
		mid.Add(mid, big.NewInt(1))
		return mid.Rsh(mid, 1).String(), nil
	}
	return "", errors.New("reshard " + stream + ": no shard " + shard + " in the stream")
}
