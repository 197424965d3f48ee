package health_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/shardline/kinesis/health"
)

// stalled stands for a *producer.Producer or *consumer.Consumer: anything with Health.
type stalled struct{}

func (stalled) Health() health.Report {
	r := health.Report{Component: "consumer", Stream: "orders", Live: true}
	r.Add(health.Check{Name: "store", Status: health.Failing, Reason: "checkpoint store unreachable for 45s"})
	return r
}

// A live component that is failing passes liveness (restarting it would not fix its store)
// and fails readiness (take it out of rotation).
func ExampleReadinessHandler() {
	mux := http.NewServeMux()
	mux.Handle("/healthz", health.LivenessHandler(stalled{}))
	mux.Handle("/readyz", health.ReadinessHandler(stalled{}))

	for _, path := range []string{"/healthz", "/readyz"} {
		w := httptest.NewRecorder()
		mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		fmt.Println(path, w.Code)
	}
	// Output:
	// /healthz 200
	// /readyz 503
}
