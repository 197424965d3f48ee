package observability

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/shardline/kinesis/metrics"
)

// dashboard is the part of Grafana's dashboard model these tests read.
type dashboard struct {
	UID           string   `json:"uid"`
	Title         string   `json:"title"`
	SchemaVersion int      `json:"schemaVersion"`
	Tags          []string `json:"tags"`
	Templating    struct {
		List []variable `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type variable struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Query      any            `json:"query"`
	Regex      string         `json:"regex"`
	Datasource *datasourceRef `json:"datasource"`
	IncludeAll bool           `json:"includeAll"`
	Multi      bool           `json:"multi"`
	AllValue   string         `json:"allValue"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type panel struct {
	ID          int            `json:"id"`
	Type        string         `json:"type"`
	Title       string         `json:"title"`
	Description string         `json:"description"`
	Datasource  *datasourceRef `json:"datasource"`
	GridPos     struct{ H, W, X, Y int }
	Targets     []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	Panels []panel `json:"panels"` // a collapsed row's panels
}

func loadDashboard(t testing.TB) dashboard {
	t.Helper()
	b, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels returns the panels, with those of collapsed rows, rows left out.
func (d dashboard) allPanels() []panel {
	var ps []panel
	var walk func([]panel)
	walk = func(in []panel) {
		for _, p := range in {
			if p.Type == "row" {
				walk(p.Panels)
				continue
			}
			ps = append(ps, p)
		}
	}
	walk(d.Panels)
	return ps
}

func (d dashboard) variable(name string) (variable, bool) {
	for _, v := range d.Templating.List {
		if v.Name == name {
			return v, true
		}
	}
	return variable{}, false
}

// queryResultRE is Grafana's query_result(expr) variable query.
var queryResultRE = regexp.MustCompile(`(?s)^query_result\((.*)\)$`)

// variableQuery returns the PromQL inside a query variable's query_result(...).
func variableQuery(v variable) (string, error) {
	q, ok := v.Query.(string)
	if !ok {
		return "", fmt.Errorf("variable %s: query is %T, want a string", v.Name, v.Query)
	}
	m := queryResultRE.FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		return "", fmt.Errorf("variable %s: %q is not query_result(...)", v.Name, q)
	}
	return m[1], nil
}

// grafanaVarRE matches $name and ${name} (Grafana's ${name:format} is not used here).
var grafanaVarRE = regexp.MustCompile(`\$\{(\w+)\}|\$(\w+)`)

// expand replaces the Grafana variables of expr with vars; a variable missing from vars is
// an error.
func expand(expr string, vars map[string]string) (string, error) {
	var missing []string
	out := grafanaVarRE.ReplaceAllStringFunc(expr, func(v string) string {
		m := grafanaVarRE.FindStringSubmatch(v)
		name := m[1] + m[2]
		val, ok := vars[name]
		if !ok {
			missing = append(missing, name)
			return v
		}
		return val
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("unknown Grafana variables %q in %q", missing, expr)
	}
	return out, nil
}

// staticVars are the values TestDashboard gives the dashboard's variables: the defaults, and
// for Grafana's built-in intervals values of the kind Grafana substitutes.
var staticVars = map[string]string{
	"prefix":          namespace + "_",
	"job":             ".*",
	"stream":          ".*",
	"__rate_interval": "1m",
	"__interval":      "15s",
	"__range":         "1h",
}

// requiredPanels maps each panel issue 10 asks for to its title on the dashboard.
var requiredPanels = map[string]string{
	"producer throughput":        "Producer throughput (records/s)",
	"producer errors by type":    "Producer errors by type",
	"producer throttles":         "Producer throttles",
	"producer batch size":        "Batch size (entries per PutRecords)",
	"producer put latency":       "Put latency",
	"producer buffer":            "Producer buffer (records)",
	"consumer records per shard": "Records received per shard",
	"consumer bytes per shard":   "Bytes received per shard",
	"consumer iterator age max":  "Iterator age max per shard",
	"consumer lag":               "Lag per shard (records not checkpointed)",
	"consumer processing time":   "Handler processing time per batch",
	"checkpoint outcomes":        "Checkpoint outcomes",
	"leases per worker":          "Leases per worker",
	"live workers":               "Live workers",
	"stream shards":              "Shards",
	"stream reshards":            "Reshards",
}

func TestDashboard(t *testing.T) {
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" || len(d.Tags) == 0 {
		t.Errorf("dashboard needs a uid, a title and tags: %q %q %q", d.UID, d.Title, d.Tags)
	}
	if d.SchemaVersion < 36 { // Grafana 9: datasource references by uid
		t.Errorf("schemaVersion %d, want at least 36", d.SchemaVersion)
	}

	// Variables: the data source, the metric prefix, and job and stream filters.
	if v, ok := d.variable("datasource"); !ok || v.Type != "datasource" || v.Query != "prometheus" {
		t.Errorf("variable datasource = %+v, want a Prometheus data source variable", v)
	}
	if v, ok := d.variable("prefix"); !ok || v.Type != "textbox" || v.Query != namespace+"_" {
		t.Errorf("variable prefix = %+v, want a textbox defaulting to %s_", v, namespace)
	}
	referenced := map[metrics.Name]bool{}
	for _, name := range []string{"job", "stream"} {
		v, ok := d.variable(name)
		if !ok {
			t.Errorf("no variable %s", name)
			continue
		}
		if v.Type != "query" || v.Datasource == nil || v.Datasource.UID != "${datasource}" ||
			!v.Multi || !v.IncludeAll || v.AllValue != ".*" {
			t.Errorf("variable %s = %+v, want a multi-value query of ${datasource} with All as .*", name, v)
		}
		if _, err := grafanaRegex(v.Regex); err != nil {
			t.Errorf("variable %s: %v", name, err)
		}
		q, err := variableQuery(v)
		if err == nil {
			q, err = expand(q, staticVars)
		}
		if err == nil {
			var names []metrics.Name
			names, err = checkExpr(q)
			for _, n := range names {
				referenced[n] = true
			}
		}
		if err != nil {
			t.Errorf("variable %s: %v", name, err)
		}
	}

	// Panels: layout, data source, descriptions, and every expression against the catalog.
	ids := map[int]bool{}
	titles := map[string]bool{}
	var cells [][2]int
	for _, p := range append(slices.Clone(d.Panels), d.allPanels()...) {
		if ids[p.ID] && p.Type != "row" {
			continue // a collapsed row's panels are listed twice here
		}
		if ids[p.ID] {
			t.Errorf("panel id %d is used twice", p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside Grafana's 24 columns", p.Title, g)
		}
		for x := g.X; x < g.X+g.W; x++ {
			for y := g.Y; y < g.Y+g.H; y++ {
				if slices.Contains(cells, [2]int{x, y}) {
					t.Errorf("panel %q overlaps another at column %d, row %d", p.Title, x, y)
					x, y = g.X+g.W, g.Y+g.H
				}
				cells = append(cells, [2]int{x, y})
			}
		}
	}
	for _, p := range d.allPanels() {
		if titles[p.Title] {
			t.Errorf("two panels are called %q", p.Title)
		}
		titles[p.Title] = true
		if p.Description == "" {
			t.Errorf("panel %q has no description", p.Title)
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: data source %+v, want ${datasource}", p.Title, p.Datasource)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		refIDs := map[string]bool{}
		for _, tg := range p.Targets {
			if refIDs[tg.RefID] {
				t.Errorf("panel %q: refId %s twice", p.Title, tg.RefID)
			}
			refIDs[tg.RefID] = true
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q %s: data source %+v, want ${datasource}", p.Title, tg.RefID, tg.Datasource)
			}
			if strings.Contains(tg.Expr, namespace+"_") {
				t.Errorf("panel %q %s: names the %s_ prefix instead of ${prefix}", p.Title, tg.RefID, namespace)
			}
			expr, err := expand(tg.Expr, staticVars)
			if err != nil {
				t.Errorf("panel %q %s: %v", p.Title, tg.RefID, err)
				continue
			}
			names, err := checkExpr(expr)
			if err != nil {
				t.Errorf("panel %q %s: %v", p.Title, tg.RefID, err)
			}
			for _, n := range names {
				referenced[n] = true
			}
		}
	}
	for what, title := range requiredPanels {
		if !titles[title] {
			t.Errorf("no panel %q (%s)", title, what)
		}
	}
	// Every metric of the catalog is on the dashboard: a metric added to the catalog fails
	// here until it has a panel.
	for _, desc := range metrics.Catalog {
		if !referenced[desc.Name] {
			t.Errorf("no panel reads %s", desc.Name)
		}
	}
	for _, p := range d.allPanels() {
		if p.Title == requiredPanels["leases per worker"] && !strings.Contains(p.Description, "instance") {
			t.Errorf("panel %q must say that a worker is a scraped instance: %q", p.Title, p.Description)
		}
	}
}

// grafanaRegex compiles a variable's /regex/ (Grafana's JavaScript form) with Go's regexp;
// the dashboard uses nothing the two disagree on.
func grafanaRegex(s string) (*regexp.Regexp, error) {
	if len(s) < 2 || s[0] != '/' || s[len(s)-1] != '/' {
		return nil, fmt.Errorf("regex %q is not /.../", s)
	}
	re, err := regexp.Compile(s[1 : len(s)-1])
	if err == nil && re.NumSubexp() != 1 {
		err = fmt.Errorf("regex %q must capture the value in one group", s)
	}
	return re, err
}

// TestExpand guards the substitution both dashboard tests rely on.
func TestExpand(t *testing.T) {
	got, err := expand(`rate(${prefix}a_total{job=~"$job"}[$__rate_interval])`, map[string]string{
		"prefix": "p_", "job": "x|y", "__rate_interval": "10s",
	})
	if want := `rate(p_a_total{job=~"x|y"}[10s])`; err != nil || got != want {
		t.Errorf("expand = %q, %v; want %q", got, err, want)
	}
	if _, err := expand(`rate(a[$__rate_intervall])`, map[string]string{"__rate_interval": "1m"}); err == nil {
		t.Error("expand accepted an unknown variable")
	}
}
