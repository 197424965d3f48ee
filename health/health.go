// Package health is the health report of a producer or consumer and the HTTP handlers that
// serve it the Kubernetes way: liveness (is the process worth keeping: restart it otherwise)
// and readiness (is it doing its job: take it out of rotation otherwise).
//
//	mux.Handle("/healthz", health.LivenessHandler(producer, consumer))
//	mux.Handle("/readyz", health.ReadinessHandler(producer, consumer))
//
// Both answer JSON: the reports of every component, 200 when the probe passes and 503 when it
// does not.
package health

import (
	"encoding/json"
	"net/http"
	"time"
)

// Status is the state of a check or a whole report.
type Status string

// Statuses, from best to worst.
const (
	// OK: working as intended.
	OK Status = "ok"
	// Degraded: working, but something needs attention (a store outage being retried, a
	// shard behind, the buffer filling up). A degraded component stays ready.
	Degraded Status = "degraded"
	// Failing: not doing its job. A failing component is not ready.
	Failing Status = "failing"
)

func (s Status) rank() int {
	switch s {
	case OK:
		return 0
	case Degraded:
		return 1
	}
	return 2
}

// Worse returns the worse of s and t.
func (s Status) Worse(t Status) Status {
	if t.rank() > s.rank() {
		return t
	}
	return s
}

// Check is one aspect of a component's health, with the figures it was judged on.
type Check struct {
	Name    string             `json:"name"`
	Status  Status             `json:"status"`
	Reason  string             `json:"reason,omitempty"`
	Figures map[string]float64 `json:"figures,omitempty"`
}

// Report is the health of one component.
type Report struct {
	Component string    `json:"component"` // "producer" or "consumer"
	Stream    string    `json:"stream"`
	Time      time.Time `json:"time"`
	// Status is the worst of the checks'.
	Status Status `json:"status"`
	// Live is false once the component stopped for good (a closed producer, a consumer whose
	// Run returned): the liveness probe fails, so the process is restarted.
	Live   bool    `json:"live"`
	Checks []Check `json:"checks"`
}

// Add appends c and folds its status into the report's.
func (r *Report) Add(c Check) {
	if r.Status == "" {
		r.Status = OK
	}
	r.Status = r.Status.Worse(c.Status)
	r.Checks = append(r.Checks, c)
}

// Check returns the check called name, and whether there is one.
func (r Report) Check(name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// Reporter is what a handler asks for a report: *producer.Producer and *consumer.Consumer.
// Health must be safe to call from any goroutine at any time.
type Reporter interface {
	Health() Report
}

// answer is the JSON body of both handlers.
type answer struct {
	Status  Status   `json:"status"`
	Reports []Report `json:"reports"`
}

// LivenessHandler answers 200 while every reporter is live, 503 otherwise, with the reports as
// JSON. A live but failing component passes liveness: restarting it would not help a missing
// stream or an unreachable store.
func LivenessHandler(reporters ...Reporter) http.Handler {
	return handler(reporters, func(r Report) bool { return r.Live })
}

// ReadinessHandler answers 200 while every reporter is live and not failing (ok or degraded),
// 503 otherwise, with the reports as JSON.
func ReadinessHandler(reporters ...Reporter) http.Handler {
	return handler(reporters, func(r Report) bool { return r.Live && r.Status != Failing })
}

func handler(reporters []Reporter, pass func(Report) bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		a := answer{Status: OK, Reports: make([]Report, 0, len(reporters))}
		code := http.StatusOK
		for _, rep := range reporters {
			r := rep.Health()
			a.Status = a.Status.Worse(r.Status)
			if !pass(r) {
				code = http.StatusServiceUnavailable
			}
			a.Reports = append(a.Reports, r)
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(code)
		if req.Method != http.MethodHead {
			enc := json.NewEncoder(w)
			enc.SetIndent("", "  ")
			_ = enc.Encode(a)
		}
	})
}
