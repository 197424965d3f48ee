package localstack_test

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	ddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	ddbstore "github.com/shardline/kinesis/checkpoint/dynamodb"
	"github.com/shardline/kinesis/localstack"
)

// recordingTables is a DynamoDB that records the CreateTable input and reports the table
// ACTIVE with the key schema it was given, so ddbstore.CreateTable runs to the end offline.
type recordingTables struct{ input *ddb.CreateTableInput }

func (r *recordingTables) CreateTable(_ context.Context, in *ddb.CreateTableInput, _ ...func(*ddb.Options)) (*ddb.CreateTableOutput, error) {
	r.input = in
	return &ddb.CreateTableOutput{}, nil
}

func (r *recordingTables) DescribeTable(_ context.Context, in *ddb.DescribeTableInput, _ ...func(*ddb.Options)) (*ddb.DescribeTableOutput, error) {
	if r.input == nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("no table")}
	}
	return &ddb.DescribeTableOutput{Table: &types.TableDescription{
		TableName: in.TableName, TableStatus: types.TableStatusActive,
		KeySchema: r.input.KeySchema, AttributeDefinitions: r.input.AttributeDefinitions,
	}}, nil
}

// TestInitHookTableSchema guards against the compose path's checkpoint table drifting from
// checkpoint/dynamodb.CreateTable: a table with another key schema makes every Store call
// fail with ErrSchemaMismatch, other billing or options make it behave unlike the tables users
// create, and only someone with Docker would ever notice. It parses the aws CLI arguments of
// init/ready.d/10-shardline.sh into the CreateTableInput the CLI would send and compares it
// field for field with the input CreateTable sends; a flag this test does not model fails it.
func TestInitHookTableSchema(t *testing.T) {
	script, err := os.ReadFile("init/ready.d/10-shardline.sh")
	if err != nil {
		t.Fatal(err)
	}
	args, err := createTableArgs(string(script))
	if err != nil {
		t.Fatal(err)
	}
	hook, err := parseCreateTable(args)
	if err != nil {
		t.Fatalf("init hook: %v", err)
	}

	rec := &recordingTables{}
	if err := ddbstore.CreateTable(context.Background(), rec, aws.ToString(hook.TableName)); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	got, want := sortedDefinitions(hook), sortedDefinitions(rec.input)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("init hook creates\n  %s\nCreateTable creates\n  %s", describeInput(got), describeInput(want))
	}
}

// TestInitHookParserCatchesDrift guards against a parser that accepts anything, which would
// let TestInitHookTableSchema pass whatever the hook says.
func TestInitHookParserCatchesDrift(t *testing.T) {
	const good = "awslocal dynamodb create-table --table-name t \\\n" +
		"  --attribute-definitions AttributeName=pk,AttributeType=S AttributeName=sk,AttributeType=S \\\n" +
		"  --key-schema AttributeName=pk,KeyType=HASH AttributeName=sk,KeyType=RANGE \\\n" +
		"  --billing-mode PAY_PER_REQUEST >/dev/null\n"
	args, err := createTableArgs(good)
	if err != nil {
		t.Fatal(err)
	}
	in, err := parseCreateTable(args)
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(in.TableName) != "t" || in.BillingMode != types.BillingModePayPerRequest ||
		len(in.KeySchema) != 2 || in.KeySchema[1].KeyType != types.KeyTypeRange ||
		aws.ToString(in.AttributeDefinitions[1].AttributeName) != "sk" {
		t.Fatalf("parsed %s", describeInput(in))
	}
	for _, bad := range []string{
		strings.Replace(good, "--billing-mode PAY_PER_REQUEST", "--billing-mode PROVISIONED --provisioned-throughput ReadCapacityUnits=1,WriteCapacityUnits=1", 1),
		strings.Replace(good, "AttributeType=S AttributeName=sk", "AttributeType=S,Extra=1 AttributeName=sk", 1),
		strings.Replace(good, "--key-schema", "--stream-specification StreamEnabled=true --key-schema", 1),
		strings.Replace(good, "create-table", "describe-table", 1),
	} {
		args, err := createTableArgs(bad)
		if err == nil {
			_, err = parseCreateTable(args)
		}
		if err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// createTableArgs returns the arguments after "awslocal dynamodb create-table" in a shell
// script: continuation lines joined, up to the first redirection or command separator.
func createTableArgs(script string) ([]string, error) {
	joined := strings.ReplaceAll(script, "\\\n", " ")
	const cmd = "awslocal dynamodb create-table"
	var found []string
	for line := range strings.SplitSeq(joined, "\n") {
		i := strings.Index(line, cmd)
		if i < 0 || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		found = append(found, line[i+len(cmd):])
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("script has %d %q commands, want 1", len(found), cmd)
	}
	var args []string
	for _, f := range strings.Fields(found[0]) {
		if strings.ContainsAny(f, `'"$`) {
			return nil, fmt.Errorf("argument %q: quoting and expansion are not modelled", f)
		}
		if strings.HasPrefix(f, ">") || strings.HasPrefix(f, "2>") || f == "||" || f == "&&" || f == ";" || f == "|" {
			break
		}
		args = append(args, f)
	}
	return args, nil
}

// parseCreateTable turns aws CLI create-table arguments (shorthand syntax) into the input the
// CLI sends. It knows only the flags the hook should use.
func parseCreateTable(args []string) (*ddb.CreateTableInput, error) {
	values := map[string][]string{}
	var flag string
	for _, a := range args {
		if strings.HasPrefix(a, "--") {
			flag = a
			if _, dup := values[flag]; dup {
				return nil, fmt.Errorf("%s given twice", flag)
			}
			values[flag] = nil
			continue
		}
		if flag == "" {
			return nil, fmt.Errorf("argument %q before any flag", a)
		}
		values[flag] = append(values[flag], a)
	}
	in := &ddb.CreateTableInput{}
	for flag, v := range values {
		switch flag {
		case "--table-name":
			if len(v) != 1 {
				return nil, fmt.Errorf("--table-name takes one value, got %v", v)
			}
			in.TableName = aws.String(v[0])
		case "--billing-mode":
			if len(v) != 1 {
				return nil, fmt.Errorf("--billing-mode takes one value, got %v", v)
			}
			in.BillingMode = types.BillingMode(v[0])
		case "--attribute-definitions":
			for _, s := range v {
				kv, err := shorthand(s, "AttributeName", "AttributeType")
				if err != nil {
					return nil, err
				}
				in.AttributeDefinitions = append(in.AttributeDefinitions, types.AttributeDefinition{
					AttributeName: aws.String(kv["AttributeName"]), AttributeType: types.ScalarAttributeType(kv["AttributeType"]),
				})
			}
		case "--key-schema":
			for _, s := range v {
				kv, err := shorthand(s, "AttributeName", "KeyType")
				if err != nil {
					return nil, err
				}
				in.KeySchema = append(in.KeySchema, types.KeySchemaElement{
					AttributeName: aws.String(kv["AttributeName"]), KeyType: types.KeyType(kv["KeyType"]),
				})
			}
		default:
			return nil, fmt.Errorf("flag %s is not modelled: compare it with CreateTable by hand and extend this test", flag)
		}
	}
	if in.TableName == nil {
		return nil, fmt.Errorf("no --table-name in %v", args)
	}
	return in, nil
}

// shorthand parses "K1=v1,K2=v2", requiring exactly the keys given.
func shorthand(s string, keys ...string) (map[string]string, error) {
	kv := map[string]string{}
	for p := range strings.SplitSeq(s, ",") {
		k, v, ok := strings.Cut(p, "=")
		if !ok || !slices.Contains(keys, k) || kv[k] != "" {
			return nil, fmt.Errorf("shorthand %q: want exactly %v", s, keys)
		}
		kv[k] = v
	}
	if len(kv) != len(keys) {
		return nil, fmt.Errorf("shorthand %q: want exactly %v", s, keys)
	}
	return kv, nil
}

// sortedDefinitions returns a copy of in with its attribute definitions sorted by name: their
// order means nothing to DynamoDB, unlike the key schema's (HASH first).
func sortedDefinitions(in *ddb.CreateTableInput) *ddb.CreateTableInput {
	c := *in
	c.AttributeDefinitions = slices.Clone(in.AttributeDefinitions)
	slices.SortFunc(c.AttributeDefinitions, func(a, b types.AttributeDefinition) int {
		return strings.Compare(aws.ToString(a.AttributeName), aws.ToString(b.AttributeName))
	})
	return &c
}

func describeInput(in *ddb.CreateTableInput) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table %s, billing %q, attributes", aws.ToString(in.TableName), in.BillingMode)
	for _, d := range in.AttributeDefinitions {
		fmt.Fprintf(&b, " %s:%s", aws.ToString(d.AttributeName), d.AttributeType)
	}
	b.WriteString(", keys")
	for _, k := range in.KeySchema {
		fmt.Fprintf(&b, " %s:%s", aws.ToString(k.AttributeName), k.KeyType)
	}
	c := *in
	c.TableName, c.BillingMode, c.AttributeDefinitions, c.KeySchema = nil, "", nil, nil
	if !reflect.DeepEqual(c, ddb.CreateTableInput{}) {
		fmt.Fprintf(&b, ", and more: %+v", c)
	}
	return b.String()
}

// composeImage matches the image line of docker-compose.yml's localstack service.
var composeImage = regexp.MustCompile(`(?m)^\s+image:\s*\$\{SHARDLINE_LOCALSTACK_IMAGE:-([^}]+)\}\s*$`)

// TestComposePinsHelperImage guards against the two Docker paths drifting apart: a user of
// docker compose and a user of the testcontainers helper must get the same default tag (one
// that starts without a token), overridable by the same variable.
func TestComposePinsHelperImage(t *testing.T) {
	compose, err := os.ReadFile("docker-compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	m := composeImage.FindAllSubmatch(compose, -1)
	if len(m) != 1 {
		t.Fatalf("docker-compose.yml has %d image lines of the form ${%s:-...}, want 1", len(m), localstack.EnvLocalStackImage)
	}
	if got := string(m[0][1]); got != localstack.DefaultLocalStackImage {
		t.Errorf("docker-compose.yml defaults to %s, the Go helper to %s", got, localstack.DefaultLocalStackImage)
	}
}
