package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shardline/kinesis/health"
)

func newHealthCmd(a *app) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "health URL",
		Short: "Read a running worker's health endpoints (/healthz, /readyz) and print the reports",
		Long: `health asks a Shardline health endpoint (package health's liveness and readiness handlers)
and prints each component's report and checks. A URL without a path asks both /healthz
and /readyz; a URL with a path asks that one. It exits 1 when an endpoint does not answer
200 (not live, not ready) or cannot be reached.`,
		Example: `  shardline health http://127.0.0.1:9464
  shardline health http://127.0.0.1:9464/readyz --json`,
		Args: exactArgs("URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := url.Parse(args[0])
			if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
				return usagef("health: %q is not an http(s) URL", args[0])
			}
			var urls []string
			if p := strings.TrimSuffix(u.Path, "/"); p == "" {
				for _, path := range []string{"/healthz", "/readyz"} {
					v := *u
					v.Path = path
					urls = append(urls, v.String())
				}
			} else {
				urls = []string{u.String()}
			}
			return a.health(cmd.Context(), urls, timeout)
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "timeout of each HTTP request")
	return cmd
}

// probeResult is one endpoint's answer.
type probeResult struct {
	URL     string          `json:"url"`
	Code    int             `json:"http_status"`
	Pass    bool            `json:"pass"`
	Status  health.Status   `json:"status,omitempty"`
	Reports []health.Report `json:"reports"`
	Error   string          `json:"error,omitempty"`
}

func (a *app) health(ctx context.Context, urls []string, timeout time.Duration) error {
	client := &http.Client{Timeout: timeout}
	var results []probeResult
	failed := 0
	for _, u := range urls {
		r := probe(ctx, client, u)
		if !r.Pass {
			failed++
		}
		results = append(results, r)
	}
	if a.json {
		if err := writeJSON(a.stdout, results); err != nil {
			return err
		}
	} else {
		printHealth(a.stdout, results)
	}
	if failed > 0 {
		return &silentError{fmt.Errorf("health: %d of %d endpoints failed", failed, len(results))}
	}
	return nil
}

func probe(ctx context.Context, client *http.Client, u string) probeResult {
	r := probeResult{URL: u, Reports: []health.Report{}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	resp, err := client.Do(req)
	if err != nil {
		r.Error = explain(err)
		return r
	}
	defer resp.Body.Close()
	r.Code = resp.StatusCode
	r.Pass = resp.StatusCode == http.StatusOK
	body, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		r.Error = err.Error()
		r.Pass = false
		return r
	}
	var answer struct {
		Status  health.Status   `json:"status"`
		Reports []health.Report `json:"reports"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || answer.Status == "" {
		r.Error = fmt.Sprintf("not a Shardline health answer (HTTP %d): %.80q", resp.StatusCode, body)
		r.Pass = false
		return r
	}
	r.Status = answer.Status
	if answer.Reports != nil {
		r.Reports = answer.Reports
	}
	return r
}

func printHealth(w io.Writer, results []probeResult) {
	for i, r := range results {
		if i > 0 {
			fmt.Fprintln(w)
		}
		if r.Error != "" {
			code := ""
			if r.Code != 0 {
				code = fmt.Sprintf(" HTTP %d,", r.Code)
			}
			fmt.Fprintf(w, "%s:%s FAIL: %s\n", r.URL, code, r.Error)
			continue
		}
		verdict := "pass"
		if !r.Pass {
			verdict = "FAIL"
		}
		fmt.Fprintf(w, "%s: HTTP %d, %s (%s)\n", r.URL, r.Code, r.Status, verdict)
		for _, rep := range r.Reports {
			live := "live"
			if !rep.Live {
				live = "not live"
			}
			fmt.Fprintf(w, "  %s %s: %s, %s\n", rep.Component, rep.Stream, rep.Status, live)
			t := newTable(w)
			for _, c := range rep.Checks {
				cols := []string{"    " + c.Name, string(c.Status)}
				if detail := strings.TrimSpace(c.Reason + figures(c.Figures)); detail != "" {
					cols = append(cols, detail)
				}
				t.row(cols...)
			}
			_ = t.flush()
		}
	}
}

// figures renders a check's figures as " (k=v, ...)" in name order.
func figures(f map[string]float64) string {
	if len(f) == 0 {
		return ""
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+number(f[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}
