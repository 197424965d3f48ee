package health

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

type fixed Report

func (f fixed) Health() Report { return Report(f) }

func report(live bool, checks ...Check) fixed {
	r := Report{Component: "consumer", Stream: "s", Live: live}
	for _, c := range checks {
		r.Add(c)
	}
	return fixed(r)
}

// Guards against probes that restart a process for a problem a restart cannot fix, or keep
// traffic on a component that does not work: each status gives each probe its code.
func TestHandlers(t *testing.T) {
	ok := Check{Name: "store", Status: OK}
	degraded := Check{Name: "reads", Status: Degraded, Reason: "shard behind"}
	failing := Check{Name: "store", Status: Failing, Reason: "unreachable", Figures: map[string]float64{"unavailable_seconds": 40}}
	for _, tc := range []struct {
		name           string
		reps           []Reporter
		live, ready    int
		overallWantStr Status
	}{
		{"ok", []Reporter{report(true, ok)}, 200, 200, OK},
		{"degraded stays ready", []Reporter{report(true, ok, degraded)}, 200, 200, Degraded},
		{"failing is not ready but live", []Reporter{report(true, ok, failing)}, 200, 503, Failing},
		{"stopped is neither", []Reporter{report(false, ok)}, 503, 503, OK},
		{"one failing component of two", []Reporter{report(true, ok), report(true, failing)}, 200, 503, Failing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, probe := range []struct {
				h    http.Handler
				want int
			}{{LivenessHandler(tc.reps...), tc.live}, {ReadinessHandler(tc.reps...), tc.ready}} {
				rec := httptest.NewRecorder()
				probe.h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
				if rec.Code != probe.want {
					t.Errorf("code %d, want %d", rec.Code, probe.want)
				}
				var a answer
				if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || a.Status != tc.overallWantStr || len(a.Reports) != len(tc.reps) {
					t.Errorf("body %s (%v), want status %s", rec.Body, err, tc.overallWantStr)
				}
			}
		})
	}
}

func TestReportAdd(t *testing.T) {
	var r Report
	r.Add(Check{Name: "a", Status: Degraded})
	r.Add(Check{Name: "b", Status: OK})
	if r.Status != Degraded || len(r.Checks) != 2 {
		t.Errorf("report = %+v", r)
	}
	if c, ok := r.Check("b"); !ok || c.Status != OK {
		t.Errorf("Check(b) = %+v, %v", c, ok)
	}
	if _, ok := r.Check("c"); ok {
		t.Error("Check(c) found")
	}
}
