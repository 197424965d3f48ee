package compare

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/shardline/kinesis/bench/measure"
)

// Result is one library's run of one workload.
type Result struct {
	Library  string
	Workload string
	Records  int // user records the workload holds
	Counted  int64
	Usage    measure.Usage
	// EndpointCPU is the CPU time the endpoint process spent during the run, when known.
	EndpointCPU time.Duration
	// Errors counts what went wrong: records missing, delivered twice, failed, run errors.
	Errors int64
	// Misplaced counts user records on a shard their own partition key does not map to;
	// -1 when not checked.
	Misplaced int64
	// Check says in words what Errors and Misplaced hold.
	Check string
	// Err is a run that could not complete.
	Err error
}

func (r Result) perRecord(v float64) float64 {
	if r.Counted == 0 {
		return 0
	}
	return v / float64(r.Counted)
}

// RecordsPerSec is the user records counted per second of wall time.
func (r Result) RecordsPerSec() float64 {
	if r.Usage.Wall <= 0 {
		return 0
	}
	return float64(r.Counted) / r.Usage.Wall.Seconds()
}

// CPUPerRecord is the process CPU time per counted user record, in µs.
func (r Result) CPUPerRecord() float64 {
	return r.perRecord(float64(r.Usage.CPU.Nanoseconds()) / 1e3)
}

// AllocsPerRecord is heap allocations per counted user record.
func (r Result) AllocsPerRecord() float64 { return r.perRecord(float64(r.Usage.Mallocs)) }

// Table is one comparison: a title, a note on the settings, and its rows.
type Table struct {
	Title    string
	Notes    []string
	Endpoint bool // show the endpoint CPU column
	Rows     []Result
}

// Markdown writes t as a markdown table.
func (t *Table) Markdown(w io.Writer) {
	fmt.Fprintf(w, "### %s\n\n", t.Title)
	for _, n := range t.Notes {
		fmt.Fprintf(w, "%s\n", n)
	}
	if len(t.Notes) > 0 {
		fmt.Fprintln(w)
	}
	head := []string{"library", "workload", "records", "wall s", "records/s", "CPU µs/record", "allocs/record"}
	if t.Endpoint {
		head = append(head, "endpoint CPU µs/record")
	}
	head = append(head, "errors", "misplaced", "check")
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(head, " | "), strings.Repeat("---|", len(head)))
	for _, r := range t.Rows {
		cells := []string{r.Library, r.Workload}
		if r.Err != nil && r.Counted == 0 {
			cells = append(cells, fmt.Sprint(r.Records), "–", "–", "–", "–")
		} else {
			cells = append(cells,
				fmt.Sprintf("%d/%d", r.Counted, r.Records),
				fmt.Sprintf("%.2f", r.Usage.Wall.Seconds()),
				fmt.Sprintf("%.0f", r.RecordsPerSec()),
				fmt.Sprintf("%.2f", r.CPUPerRecord()),
				fmt.Sprintf("%.2f", r.AllocsPerRecord()))
		}
		if t.Endpoint {
			if r.EndpointCPU > 0 {
				cells = append(cells, fmt.Sprintf("%.2f", r.perRecord(float64(r.EndpointCPU.Nanoseconds())/1e3)))
			} else {
				cells = append(cells, "–")
			}
		}
		mis := "–"
		if r.Misplaced >= 0 {
			mis = fmt.Sprint(r.Misplaced)
		}
		check := r.Check
		if r.Err != nil {
			check = strings.TrimSpace(check + " run error: " + r.Err.Error())
		}
		cells = append(cells, fmt.Sprint(r.Errors), mis, strings.ReplaceAll(check, "|", "/"))
		fmt.Fprintf(w, "| %s |\n", strings.Join(cells, " | "))
	}
	fmt.Fprintln(w)
}
