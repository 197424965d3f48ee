package kinesisproxy

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// FaultKind is what a Fault does.
type FaultKind int

// The fault kinds. Each one's String form is its name in counters and in ParseFault.
const (
	// EntryInternalFailure answers PutRecords entries with ErrorCode InternalFailure; each
	// entry is drawn apart. Without After the entry is not forwarded; with After it is
	// written upstream and still reported failed. Only PutRecords has entries, so Op must be
	// "PutRecords" or "".
	EntryInternalFailure FaultKind = iota + 1
	// HTTP500 answers HTTP 500 with a Kinesis InternalFailure body.
	HTTP500
	// HTTP503 answers HTTP 503 with a Kinesis ServiceUnavailable body.
	HTTP503
	// Reset closes the client's connection with a TCP RST and no response.
	Reset
	// Latency delays the call by Latency ± Jitter (uniform), before forwarding or, with
	// After, before answering.
	Latency
	// Blackout makes every matching call fail with 503 while the window is open or, with
	// Hang, wait until it closes (or the client gives up) and then proceed.
	Blackout
)

var kindNames = map[FaultKind]string{
	EntryInternalFailure: "entry-internal-failure",
	HTTP500:              "http-500",
	HTTP503:              "http-503",
	Reset:                "reset",
	Latency:              "latency",
	Blackout:             "blackout",
}

// String returns the kind's name, such as "entry-internal-failure" or "http-503".
func (k FaultKind) String() string {
	if n, ok := kindNames[k]; ok {
		return n
	}
	return "FaultKind(" + strconv.Itoa(int(k)) + ")"
}

// ParseFaultKind returns the kind whose String form is s.
func ParseFaultKind(s string) (FaultKind, error) {
	for k, n := range kindNames {
		if n == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown fault kind %q", ErrInvalidConfig, s)
}

// Fault is one injected fault. It applies to a call (or, for EntryInternalFailure, to a
// PutRecords entry) when the call's operation matches Op, its window is open and a draw
// with probability Rate succeeds.
type Fault struct {
	// Op is the Kinesis operation, such as "PutRecords" or "GetRecords"; "" matches all.
	Op string
	// Kind is what happens.
	Kind FaultKind
	// Rate is the probability in [0, 1] that a matching call (entry) gets the fault; 0
	// means every one. Blackout ignores it: a window is either open or not.
	Rate float64
	// After forwards the call first and fails it on the way back: the upstream did the
	// work but the client sees a failure. For EntryInternalFailure, HTTP500, HTTP503,
	// Reset and Latency.
	After bool
	// Latency and Jitter set the Latency kind's delay: uniform in [Latency-Jitter,
	// Latency+Jitter]. Jitter must not exceed Latency.
	Latency, Jitter time.Duration
	// Start and Duration set the window in which the fault applies, from the moment the
	// faults were installed (Start for Config.Faults, the call for SetFaults). A zero
	// Duration leaves the window open for good.
	Start, Duration time.Duration
	// Hang makes a Blackout hold calls until the window closes instead of failing them.
	Hang bool
}

// ParseFault parses the compact form the kinesis-proxy program takes, comma-separated
// key=value pairs and flags:
//
//	op=PutRecords,kind=entry-internal-failure,rate=0.2,after
//	kind=latency,latency=200ms,jitter=50ms
//	kind=blackout,start=10s,duration=5s,hang
//
// Keys: op, kind (required), rate, after, latency, jitter, start, duration, hang.
func ParseFault(s string) (Fault, error) {
	var f Fault
	bad := func(format string, args ...any) (Fault, error) {
		return Fault{}, fmt.Errorf("%w: fault %q: %s", ErrInvalidConfig, s, fmt.Sprintf(format, args...))
	}
	for part := range strings.SplitSeq(s, ",") {
		key, val, hasVal := strings.Cut(strings.TrimSpace(part), "=")
		var err error
		switch key {
		case "op":
			f.Op = val
		case "kind":
			f.Kind, err = ParseFaultKind(val)
		case "rate":
			f.Rate, err = strconv.ParseFloat(val, 64)
		case "after", "hang":
			b := true
			if hasVal {
				b, err = strconv.ParseBool(val)
			}
			if key == "after" {
				f.After = b
			} else {
				f.Hang = b
			}
		case "latency":
			f.Latency, err = time.ParseDuration(val)
		case "jitter":
			f.Jitter, err = time.ParseDuration(val)
		case "start":
			f.Start, err = time.ParseDuration(val)
		case "duration":
			f.Duration, err = time.ParseDuration(val)
		default:
			return bad("unknown key %q", key)
		}
		if err != nil {
			return bad("%s: %v", key, err)
		}
	}
	if f.Kind == 0 {
		return bad("no kind")
	}
	if err := f.validate("Fault"); err != nil {
		return Fault{}, err
	}
	return f, nil
}

func validateFaults(faults []Fault) error {
	for i, f := range faults {
		if err := f.validate(fmt.Sprintf("Faults[%d]", i)); err != nil {
			return err
		}
	}
	return nil
}

func (f Fault) validate(field string) error {
	if _, ok := kindNames[f.Kind]; !ok {
		return configErr(field+".Kind", "unknown kind %d", f.Kind)
	}
	if f.Op != "" && !slices.Contains(operations, f.Op) {
		return configErr(field+".Op", "unknown Kinesis operation %q", f.Op)
	}
	if f.Kind == EntryInternalFailure && f.Op != "" && f.Op != "PutRecords" {
		return configErr(field+".Op", "%s applies to PutRecords entries, not %s", f.Kind, f.Op)
	}
	if !(f.Rate >= 0 && f.Rate <= 1) {
		return configErr(field+".Rate", "%v is outside [0, 1]", f.Rate)
	}
	if f.After && f.Kind == Blackout {
		return configErr(field+".After", "a blackout happens before forwarding")
	}
	if f.Hang && f.Kind != Blackout {
		return configErr(field+".Hang", "only a blackout hangs")
	}
	if f.Kind == Latency && f.Latency <= 0 {
		return configErr(field+".Latency", "a latency fault needs a positive latency")
	}
	if f.Kind != Latency && (f.Latency != 0 || f.Jitter != 0) {
		return configErr(field+".Latency", "set for a %s fault", f.Kind)
	}
	if f.Jitter < 0 || f.Jitter > f.Latency {
		return configErr(field+".Jitter", "%v is outside [0, Latency]", f.Jitter)
	}
	if f.Start < 0 || f.Duration < 0 {
		return configErr(field+".Start", "negative window (start %v, duration %v)", f.Start, f.Duration)
	}
	return nil
}

// operations are the Kinesis operations a Fault may name (service/kinesis v1.56), so a
// misspelt Op is refused rather than silently matching nothing.
var operations = []string{
	"AddTagsToStream", "CreateChannel", "CreateStream", "DecreaseStreamRetentionPeriod",
	"DeleteChannel", "DeleteResourcePolicy", "DeleteStream", "DeregisterStreamConsumer",
	"DescribeAccountSettings", "DescribeChannel", "DescribeLimits", "DescribeStream",
	"DescribeStreamConsumer", "DescribeStreamSummary", "DisableEnhancedMonitoring",
	"EnableEnhancedMonitoring", "GetRecords", "GetResourcePolicy", "GetShardIterator",
	"IncreaseStreamRetentionPeriod", "ListChannels", "ListShards", "ListStreamConsumers",
	"ListStreams", "ListTagsForResource", "ListTagsForStream", "MergeShards", "PutRecord",
	"PutRecords", "PutResourcePolicy", "RegisterStreamConsumer", "RemoveTagsFromStream",
	"SplitShard", "StartStreamEncryption", "StopStreamEncryption", "SubscribeToShard",
	"TagResource", "UntagResource", "UpdateAccountSettings", "UpdateChannel",
	"UpdateMaxRecordSize", "UpdateShardCount", "UpdateStreamMode",
	"UpdateStreamRecordDistributionStrategy", "UpdateStreamWarmThroughput",
}
