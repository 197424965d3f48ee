package main

import (
	"github.com/spf13/cobra"
)

// groupFlags are the flags every group command takes.
type groupFlags struct {
	group string
	store string
}

func (g *groupFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&g.group, "group", "", "consumer group (required)")
	cmd.Flags().StringVar(&g.store, "store", "", "checkpoint store URL (required): redis://HOST:PORT/DB[?prefix=P], rediss://..., dynamodb://TABLE")
}

func (g *groupFlags) check(cmd string) error {
	switch {
	case g.group == "":
		return usagef("group %s: --group is required", cmd)
	case g.store == "":
		return usagef("group %s: --store is required (%s)", cmd, "redis://HOST:PORT/DB, rediss://... or dynamodb://TABLE")
	}
	_, err := parseStoreURL(g.store)
	return err
}

func newGroupCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "group",
		Short: "Inspect and manage a Shardline consumer group: status, seek, delete",
		Long:  "group reads and changes a consumer group's leases and positions in its checkpoint store.\n\n" + storeHelp,
		Example: `  shardline group status orders --group billing --store redis://127.0.0.1:6379/0
  shardline group seek orders --group billing --store dynamodb://shardline-leases --to 2024-05-01T12:00:00Z --dry-run
  shardline group delete orders --group billing --store redis://127.0.0.1:6379/0`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("group: unknown command %q (status, seek or delete)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newGroupStatusCmd(a), newGroupSeekCmd(a), newGroupDeleteCmd(a))
	return cmd
}
