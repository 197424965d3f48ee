package kinesisproxy

import "testing"

// Guards the proxy's summary lines against losing counts: a call is counted in steps, so a
// tick between its arrival and its throttled entries (or its answer) leaves the second part in
// an interval without requests, which must still be logged (TestCounters failed 1 run in 3-6
// under load when it was not).
func TestIntervalSummaryBusy(t *testing.T) {
	prev := OpCounters{Requests: 1, Entries: 8, BytesIn: 900}
	for name, cur := range map[string]OpCounters{
		"throttled after the tick": {Requests: 1, Entries: 8, BytesIn: 900, ThrottledEntries: 3},
		"answered after the tick":  {Requests: 1, Entries: 8, BytesIn: 900, Forwarded: 1, BytesOut: 200},
		"upstream failed":          {Requests: 1, Entries: 8, BytesIn: 900, UpstreamErrors: 1},
		"fault":                    {Requests: 1, Entries: 8, BytesIn: 900, Faults: map[string]int64{"after": 1}},
	} {
		if _, busy := intervalSummary(prev, cur); !busy {
			t.Errorf("%s: interval judged idle", name)
		}
	}
	if _, busy := intervalSummary(prev, prev); busy {
		t.Error("an interval where nothing changed is judged busy")
	}
}
