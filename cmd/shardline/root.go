package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/spf13/cobra"
)

// Local stack endpoints, as localstack/up starts them.
const (
	localKinesis  = "http://127.0.0.1:4568"
	localDynamoDB = "http://127.0.0.1:4569"
	localRedis    = "redis://127.0.0.1:6379/0"
)

// app is what every command shares: the streams to write to and the global flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer

	json     bool
	endpoint string
	region   string
	profile  string
	local    bool

	cfg *aws.Config
	kin *kinesis.Client
}

const rootHelp = `shardline is the command line for Amazon Kinesis streams and Shardline consumer groups.

AWS settings come from the AWS SDK's own configuration: AWS_REGION, AWS_PROFILE, the
credential chain, and AWS_ENDPOINT_URL_KINESIS / AWS_ENDPOINT_URL_DYNAMODB (or
AWS_ENDPOINT_URL). --region, --profile and --endpoint override them; --local uses the
local stack (kinesis-mock on 127.0.0.1:4568, dynalite on 127.0.0.1:4569, Redis on 6379)
where no endpoint is set, with test credentials when none are configured.

Every command prints JSON with --json.

Exit codes:
  0  success
  1  failure: an AWS or store error (missing stream, unreachable store), a record that
     could not be put, an unhealthy endpoint
  2  usage: unknown command or flag, missing or malformed argument (a bad timestamp),
     a destructive command against a non-local endpoint without --yes`

func newRoot(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:           "shardline",
		Short:         "Kinesis streams and Shardline consumer groups from the command line",
		Long:          rootHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		Example: `  shardline --local streams
  shardline --local create orders --shards 2
  seq 100 | shardline --local put orders
  shardline --local tail orders -n 10
  shardline --local group status orders --group billing --store redis://127.0.0.1:6379/0
  shardline metrics http://127.0.0.1:9464/metrics --interval 5s`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q (see shardline --help)", args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error { return cmd.Help() },
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetIn(a.stdin)
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return usagef("%v (see %s --help)", err, cmd.CommandPath())
	})
	f := root.PersistentFlags()
	f.BoolVar(&a.json, "json", false, "print JSON instead of text")
	f.StringVar(&a.endpoint, "endpoint", "", "Kinesis endpoint URL (default: AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL, or AWS)")
	f.StringVar(&a.region, "region", "", "AWS region (default: the SDK's configuration; us-east-1 with --local)")
	f.StringVar(&a.profile, "profile", "", "AWS shared config profile")
	f.BoolVar(&a.local, "local", false, "use the local stack's endpoints (Kinesis 127.0.0.1:4568, DynamoDB 127.0.0.1:4569) unless set otherwise")

	root.AddCommand(
		newStreamsCmd(a), newDescribeCmd(a),
		newCreateCmd(a), newDeleteCmd(a), newReshardCmd(a),
		newPutCmd(a), newTailCmd(a),
		newGroupCmd(a),
		newMetricsCmd(a), newHealthCmd(a),
	)
	return root
}

// run executes args and returns the exit code; errors are printed on stderr as one line.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr}
	root := newRoot(a)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	var silent *silentError
	if err != nil && !errors.As(err, &silent) {
		fmt.Fprintln(stderr, "shardline: "+explain(err))
	}
	return exitCode(err)
}

// exactArgs is cobra.ExactArgs with a usage error that names what is missing.
func exactArgs(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) < len(names) {
			return usagef("%s: missing %s (see %s --help)", cmd.CommandPath(), strings.Join(names[len(args):], " and "), cmd.CommandPath())
		}
		if len(args) > len(names) {
			return usagef("%s: unexpected argument %q (see %s --help)", cmd.CommandPath(), args[len(names)], cmd.CommandPath())
		}
		return nil
	}
}

// awsConfig loads the SDK's configuration once, with the global flags applied.
func (a *app) awsConfig(ctx context.Context) (aws.Config, error) {
	if a.cfg != nil {
		return *a.cfg, nil
	}
	var opts []func(*config.LoadOptions) error
	if a.region != "" {
		opts = append(opts, config.WithRegion(a.region))
	} else if a.local && firstEnv("AWS_REGION", "AWS_DEFAULT_REGION") == "" {
		opts = append(opts, config.WithRegion("us-east-1"))
	}
	if a.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(a.profile))
	}
	// Dummy credentials only for the local stack, and only when none are configured: against
	// AWS the SDK's own chain (roles, SSO) is left alone.
	if (a.local || isLocalURL(a.endpoint)) && a.profile == "" && firstEnv("AWS_ACCESS_KEY_ID", "AWS_PROFILE") == "" {
		opts = append(opts, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, usagef("no AWS region: set AWS_REGION, pass --region, or --local for the local stack")
	}
	a.cfg = &cfg
	return cfg, nil
}

// kinesisEndpoint is the Kinesis endpoint in use: --endpoint, the environment, the local
// stack with --local, or "" for AWS's own.
func (a *app) kinesisEndpoint() string {
	if a.endpoint != "" {
		return a.endpoint
	}
	if e := firstEnv("AWS_ENDPOINT_URL_KINESIS", "AWS_ENDPOINT_URL"); e != "" {
		return e
	}
	if a.local {
		return localKinesis
	}
	return ""
}

func (a *app) dynamoDBEndpoint() string {
	if e := firstEnv("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL"); e != "" {
		return e
	}
	if a.local {
		return localDynamoDB
	}
	return ""
}

// kinesis returns the Kinesis client, created once.
func (a *app) kinesis(ctx context.Context) (*kinesis.Client, error) {
	if a.kin != nil {
		return a.kin, nil
	}
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return nil, err
	}
	endpoint := a.kinesisEndpoint()
	if endpoint != "" {
		if err := checkURL("--endpoint", endpoint); err != nil {
			return nil, err
		}
	}
	a.kin = kinesis.NewFromConfig(cfg, func(o *kinesis.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
	return a.kin, nil
}

// dynamodb returns a DynamoDB client for endpoint ("" for the configured one).
func (a *app) dynamodb(ctx context.Context, endpoint string) (*dynamodb.Client, string, error) {
	cfg, err := a.awsConfig(ctx)
	if err != nil {
		return nil, "", err
	}
	if endpoint == "" {
		endpoint = a.dynamoDBEndpoint()
	}
	return dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), endpoint, nil
}

// localKinesisTarget reports whether Kinesis calls go to this machine: destructive commands
// need --yes otherwise.
func (a *app) localKinesisTarget() bool {
	return isLocalURL(a.kinesisEndpoint())
}

// requireYes refuses a destructive action against a non-local target unless --yes was given.
func requireYes(yes, local bool, what, target string) error {
	if yes || local {
		return nil
	}
	if target == "" {
		target = "AWS"
	}
	return usagef("refusing to %s on %s without --yes: it is not a local endpoint", what, target)
}

func checkURL(flag, s string) error {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return usagef("%s %q is not a URL such as http://127.0.0.1:4568", flag, s)
	}
	return nil
}

// isLocalURL reports whether s is a URL whose host is a loopback address or localhost.
func isLocalURL(s string) bool {
	if s == "" {
		return false
	}
	u, err := url.Parse(s)
	if err != nil {
		return false
	}
	return isLoopbackHost(u.Hostname())
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}
