package metrics

import "testing"

func TestKey(t *testing.T) {
	full := Labels{Stream: "orders", Shard: "shardId-000000000001", ErrorType: "InternalFailure", Operation: "PutRecords"}
	tests := []struct {
		name   string
		metric Name
		labels Labels
		want   string
		// guards names the bug the case catches.
		guards string
	}{
		{"stream level", ProducerRecordsSent, Labels{Stream: "orders"}, "producer_records_sent_total{stream_name=orders}",
			"basic format drifting from name{label=value}"},
		{"undeclared labels dropped", ProducerRecordsSent, full, "producer_records_sent_total{stream_name=orders}",
			"a stray Shard or Operation splitting one catalog series into several"},
		{"sorted by label name", ConsumerErrors, full,
			"consumer_errors_total{error_type=InternalFailure,shard_id=shardId-000000000001,stream_name=orders}",
			"labels rendered in declaration order instead of sorted order"},
		{"declared but empty kept", ConsumerRecordsReceived, Labels{Stream: "orders"},
			"consumer_records_received_total{shard_id=,stream_name=orders}",
			"keys whose shape depends on which values happen to be set"},
		{"outside catalog keeps non-empty labels", Name("custom_total"), Labels{Stream: "s", Operation: "GetRecords"},
			"custom_total{operation=GetRecords,stream_name=s}",
			"labels of unknown names dropped, or empty ones rendered"},
		{"no labels is bare name", Name("custom_total"), Labels{}, "custom_total",
			"empty braces after a label-less name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Key(tt.metric, tt.labels); got != tt.want {
				t.Errorf("Key(%s, %+v) = %q, want %q (guards against %s)", tt.metric, tt.labels, got, tt.want, tt.guards)
			}
		})
	}
}

// TestCatalogLabelsAreKnown guards against a catalog entry naming a label that Labels has no
// field for: the in-memory and Prometheus collectors would silently never fill it.
func TestCatalogLabelsAreKnown(t *testing.T) {
	seen := map[Name]bool{}
	for _, d := range Catalog {
		if seen[d.Name] {
			t.Errorf("%s listed twice", d.Name)
		}
		seen[d.Name] = true
		if d.Help == "" {
			t.Errorf("%s has no help text", d.Name)
		}
		for _, l := range d.Labels {
			if maskOf(l) == 0 {
				t.Errorf("%s declares unknown label %q", d.Name, l)
			}
		}
		if got, ok := Lookup(d.Name); !ok || got.Kind != d.Kind {
			t.Errorf("Lookup(%s) = %+v, %v", d.Name, got, ok)
		}
	}
}
