package metrics

// Collector receives Shardline's metrics. Producers, consumers and stores call it on their hot
// paths, so implementations must be safe for concurrent use and should not block.
//
// Names come from the catalog (see [Catalog]); the kind of each name is fixed there, so a
// collector never sees Add on a gauge. Labels carry only the catalog's bounded label set:
// never a partition key or a sequence number.
type Collector interface {
	// Add adds delta (≥ 0) to the counter name.
	Add(name Name, delta float64, labels Labels)
	// Set sets the gauge name to value.
	Set(name Name, value float64, labels Labels)
	// Observe records one sample of the histogram name.
	Observe(name Name, value float64, labels Labels)
}

// Labels is the fixed label set of every metric. It is a value, not a map, so that passing it
// costs no allocation; fields a metric does not declare in the catalog are ignored.
type Labels struct {
	Stream    string // stream_name
	Shard     string // shard_id
	ErrorType string // error_type: an AWS error code or a short class such as "connection"
	Operation string // operation: the API call or store operation, such as "PutRecords"
}

// Label names as exposed by collectors.
const (
	LabelStream    = "stream_name"
	LabelShard     = "shard_id"
	LabelErrorType = "error_type"
	LabelOperation = "operation"
)

// Value returns the value of the label called name ("stream_name", "shard_id", "error_type" or
// "operation"), or "" for any other name.
func (l Labels) Value(name string) string {
	switch name {
	case LabelStream:
		return l.Stream
	case LabelShard:
		return l.Shard
	case LabelErrorType:
		return l.ErrorType
	case LabelOperation:
		return l.Operation
	}
	return ""
}

// Nop is the collector that does nothing. It is the default everywhere a Collector is optional,
// so hot paths never check for nil; its calls cost no allocation.
type Nop struct{}

// Add implements Collector.
func (Nop) Add(Name, float64, Labels) {}

// Set implements Collector.
func (Nop) Set(Name, float64, Labels) {}

// Observe implements Collector.
func (Nop) Observe(Name, float64, Labels) {}

var _ Collector = Nop{}
