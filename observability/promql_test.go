package observability

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// This file reads the metric names and labels out of a PromQL expression, so that the
// dashboard and the rules can be checked against metrics.Catalog without importing
// Prometheus' own parser (a large module for one test). It is a lexer for what PromQL
// expressions are made of, not a parser: whether an expression parses is Prometheus' call,
// which the real-Prometheus test asks for every expression.

// selector is one metric name an expression reads, with its label matchers.
type selector struct {
	name     string
	matchers []matcher
}

type matcher struct{ label, op, value string }

// promqlRefs is what an expression refers to.
type promqlRefs struct {
	selectors []selector
	grouping  []string // labels of by, without, on, ignoring, group_left and group_right
}

// promqlFunctions are PromQL's functions and aggregation operators (Prometheus 2.42).
var promqlFunctions = map[string]bool{
	"abs": true, "absent": true, "absent_over_time": true, "avg_over_time": true, "ceil": true,
	"changes": true, "clamp": true, "clamp_max": true, "clamp_min": true, "count_over_time": true,
	"day_of_month": true, "day_of_week": true, "day_of_year": true, "days_in_month": true,
	"delta": true, "deriv": true, "exp": true, "floor": true, "histogram_quantile": true,
	"holt_winters": true, "hour": true, "idelta": true, "increase": true, "irate": true,
	"label_join": true, "label_replace": true, "last_over_time": true, "ln": true, "log10": true,
	"log2": true, "max_over_time": true, "min_over_time": true, "minute": true, "month": true,
	"predict_linear": true, "present_over_time": true, "quantile_over_time": true, "rate": true,
	"resets": true, "round": true, "scalar": true, "sgn": true, "sort": true, "sort_desc": true,
	"sqrt": true, "stddev_over_time": true, "stdvar_over_time": true, "sum_over_time": true,
	"time": true, "timestamp": true, "vector": true, "year": true,
	"acos": true, "acosh": true, "asin": true, "asinh": true, "atan": true, "atanh": true,
	"cos": true, "cosh": true, "sin": true, "sinh": true, "tan": true, "tanh": true, "deg": true,
	"rad": true, "pi": true, "start": true, "end": true, // start() and end() of the @ modifier
	// aggregation operators
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true,
	"stdvar": true, "count": true, "count_values": true, "bottomk": true, "topk": true,
	"quantile": true,
}

// promqlKeywords are the words that are neither functions nor metric names.
var promqlKeywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"inf": true, "nan": true,
}

// groupingWords take a parenthesised list of label names.
var groupingWords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

func isIdentStart(r byte) bool { return r == '_' || r == ':' || unicode.IsLetter(rune(r)) }
func isIdentPart(r byte) bool  { return isIdentStart(r) || r >= '0' && r <= '9' }

// parseRefs returns the selectors and grouping labels of expr. It fails on what a checked
// expression must not contain: a function PromQL does not have, a selector without a metric
// name ({__name__=~...} hides names from the check), unbalanced brackets or strings.
func parseRefs(expr string) (promqlRefs, error) {
	var refs promqlRefs
	s := expr
	i := 0
	skipSpace := func() {
		for i < len(s) {
			switch {
			case s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r':
				i++
			case s[i] == '#': // comment to the end of the line
				for i < len(s) && s[i] != '\n' {
					i++
				}
			default:
				return
			}
		}
	}
	readString := func() (string, error) {
		q := s[i]
		j := i + 1
		var b strings.Builder
		for j < len(s) && s[j] != q {
			if s[j] == '\\' && q != '`' && j+1 < len(s) {
				j++
			}
			b.WriteByte(s[j])
			j++
		}
		if j >= len(s) {
			return "", fmt.Errorf("unterminated string at %d", i)
		}
		i = j + 1
		return b.String(), nil
	}
	readIdent := func() string {
		j := i
		for j < len(s) && isIdentPart(s[j]) {
			j++
		}
		id := s[i:j]
		i = j
		return id
	}
	// readMatchers reads {label op "value", ...}; i is at '{'.
	readMatchers := func() ([]matcher, error) {
		i++
		var ms []matcher
		for {
			skipSpace()
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated label matchers")
			}
			if s[i] == '}' {
				i++
				return ms, nil
			}
			if s[i] == ',' {
				i++
				continue
			}
			if !isIdentStart(s[i]) {
				return nil, fmt.Errorf("label name expected at %d: %q", i, s[i:])
			}
			label := readIdent()
			skipSpace()
			var op string
			for _, o := range []string{"=~", "!~", "!=", "="} {
				if strings.HasPrefix(s[i:], o) {
					op = o
					break
				}
			}
			if op == "" {
				return nil, fmt.Errorf("matcher operator expected after %s at %d", label, i)
			}
			i += len(op)
			skipSpace()
			if i >= len(s) || (s[i] != '"' && s[i] != '\'' && s[i] != '`') {
				return nil, fmt.Errorf("string expected after %s%s", label, op)
			}
			v, err := readString()
			if err != nil {
				return nil, err
			}
			ms = append(ms, matcher{label, op, v})
		}
	}
	// readLabelList reads (a, b, c); i is at '('.
	readLabelList := func() ([]string, error) {
		i++
		var ls []string
		for {
			skipSpace()
			if i >= len(s) {
				return nil, fmt.Errorf("unterminated label list")
			}
			switch {
			case s[i] == ')':
				i++
				return ls, nil
			case s[i] == ',':
				i++
			case isIdentStart(s[i]):
				ls = append(ls, readIdent())
			default:
				return nil, fmt.Errorf("label name expected at %d: %q", i, s[i:])
			}
		}
	}
	depth := 0
	for {
		skipSpace()
		if i >= len(s) {
			break
		}
		c := s[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			if _, err := readString(); err != nil {
				return refs, err
			}
		case c == '[': // range or subquery: durations only
			j := strings.IndexByte(s[i:], ']')
			if j < 0 {
				return refs, fmt.Errorf("unterminated [ at %d", i)
			}
			i += j + 1
		case c == '{':
			return refs, fmt.Errorf("selector without a metric name at %d: %q", i, s[i:])
		case c >= '0' && c <= '9' || c == '.' && i+1 < len(s) && s[i+1] >= '0' && s[i+1] <= '9':
			for i < len(s) && (isIdentPart(s[i]) || s[i] == '.') { // 5m, 1e3, 0x1f, 0.99
				i++
			}
		case isIdentStart(c):
			id := readIdent()
			skipSpace()
			next := byte(0)
			if i < len(s) {
				next = s[i]
			}
			lower := strings.ToLower(id)
			switch {
			case groupingWords[id]:
				if next == '(' {
					ls, err := readLabelList()
					if err != nil {
						return refs, err
					}
					refs.grouping = append(refs.grouping, ls...)
				} else if id != "group_left" && id != "group_right" {
					return refs, fmt.Errorf("%s without a label list", id)
				}
			case promqlKeywords[lower]:
			case next == '(':
				if !promqlFunctions[id] {
					return refs, fmt.Errorf("unknown function %s", id)
				}
			case promqlFunctions[id] && (id == "sum" || id == "min" || id == "max" || id == "avg" ||
				id == "count" || id == "group" || id == "stddev" || id == "stdvar" ||
				id == "topk" || id == "bottomk" || id == "quantile" || id == "count_values"):
				// an aggregation followed by by/without: the clause is read next
			default:
				sel := selector{name: id}
				if next == '{' {
					ms, err := readMatchers()
					if err != nil {
						return refs, err
					}
					sel.matchers = ms
				}
				refs.selectors = append(refs.selectors, sel)
			}
		case c == '(':
			depth++
			i++
		case c == ')':
			depth--
			if depth < 0 {
				return refs, fmt.Errorf("unbalanced ) at %d", i)
			}
			i++
		default: // operators, commas, @
			i++
		}
	}
	if depth != 0 {
		return refs, fmt.Errorf("unbalanced parentheses")
	}
	return refs, nil
}

func (r promqlRefs) names() []string {
	var ns []string
	for _, s := range r.selectors {
		ns = append(ns, s.name)
	}
	return ns
}

func TestParseRefs(t *testing.T) {
	tests := []struct {
		expr     string
		names    []string
		grouping []string
		labels   []string // matcher labels, in order
		err      bool
	}{
		// The simplest selector: a name with no matchers.
		{expr: `up`, names: []string{"up"}},
		// Strings that look like metric names must not count (error_type regexes do).
		{expr: `sum by (job) (rate(a_total{error_type!~"b_total|c_total"}[5m]))`,
			names: []string{"a_total"}, grouping: []string{"job"}, labels: []string{"error_type"}},
		// Aggregation clause after the argument list.
		{expr: `sum(rate(a_total[1m])) without (instance, shard_id)`,
			names: []string{"a_total"}, grouping: []string{"instance", "shard_id"}},
		// histogram_quantile's le and a float literal.
		{expr: `histogram_quantile(0.99, sum by (le, stream_name) (rate(h_bucket{job=~"x"}[$__rate_interval])))`,
			names: []string{"h_bucket"}, grouping: []string{"le", "stream_name"}, labels: []string{"job"}},
		// Set operators, on(), comparison, offset with a duration, bool.
		{expr: `a and on (job, instance) increase(b_total[5m]) > bool 0 unless a offset 5m`,
			names: []string{"a", "b_total", "a"}, grouping: []string{"job", "instance"}},
		// label_replace's arguments are strings, not labels or names.
		{expr: `label_replace(increase(lost_total[10m]), "event", "lost", "", "")`,
			names: []string{"lost_total"}},
		// group_left with and without a label list; 1e3 and 0x1f are numbers.
		{expr: `a * on (x) group_left (y) b / 1e3 + c * on (x) group_left d - 0x1f`,
			names: []string{"a", "b", "c", "d"}, grouping: []string{"x", "y", "x"}},
		// Subqueries and comments.
		{expr: "max_over_time(rate(a_total[1m])[10m:30s]) # rate of a_total\n", names: []string{"a_total"}},
		// A misspelt function is an error, not a metric name.
		{expr: `rat(a_total[5m])`, err: true},
		// A selector without a name hides the name from the catalog check.
		{expr: `sum(rate({__name__=~"a_total|b_total"}[5m]))`, err: true},
		{expr: `sum(rate(a_total[5m])`, err: true},
		{expr: `a{b="c}`, err: true},
	}
	for _, tt := range tests {
		refs, err := parseRefs(tt.expr)
		if tt.err {
			if err == nil {
				t.Errorf("parseRefs(%q) = %+v, want an error", tt.expr, refs)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseRefs(%q): %v", tt.expr, err)
			continue
		}
		if got := refs.names(); !slices.Equal(got, tt.names) {
			t.Errorf("parseRefs(%q) names = %q, want %q", tt.expr, got, tt.names)
		}
		if !slices.Equal(refs.grouping, tt.grouping) {
			t.Errorf("parseRefs(%q) grouping = %q, want %q", tt.expr, refs.grouping, tt.grouping)
		}
		var labels []string
		for _, s := range refs.selectors {
			for _, m := range s.matchers {
				labels = append(labels, m.label)
			}
		}
		if !slices.Equal(labels, tt.labels) {
			t.Errorf("parseRefs(%q) matcher labels = %q, want %q", tt.expr, labels, tt.labels)
		}
	}
}
