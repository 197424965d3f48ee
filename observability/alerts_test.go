package observability

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// ruleFile is a Prometheus rules file.
type ruleFile struct {
	Groups []ruleGroup `yaml:"groups"`
}

type ruleGroup struct {
	Name  string `yaml:"name"`
	Rules []rule `yaml:"rules"`
}

type rule struct {
	Alert       string            `yaml:"alert,omitempty"`
	Record      string            `yaml:"record,omitempty"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// ruleTests is a promtool test rules file, the parts these tests read.
type ruleTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []struct {
				ExpLabels      map[string]string `yaml:"exp_labels"`
				ExpAnnotations map[string]string `yaml:"exp_annotations"`
			} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadRules(t *testing.T) []rule {
	t.Helper()
	var f ruleFile
	readYAML(t, rulesFile, &f)
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	if len(rules) == 0 {
		t.Fatalf("%s has no rules", rulesFile)
	}
	return rules
}

// requiredAlerts maps each alert issue 10 asks for to the rules that provide it.
var requiredAlerts = map[string][]string{
	"error rates":                       {"ShardlineProducerErrorRate", "ShardlineConsumerErrorRate"},
	"iterator age over 60 s for 10 min": {"ShardlineIteratorAgeHigh"},
	"checkpoint failures":               {"ShardlineCheckpointFailures", "ShardlineCheckpointStoreErrors"},
	"lease churn":                       {"ShardlineLeaseChurn"},
	"no live workers":                   {"ShardlineNoLiveWorkers"},
	"producer records failed":           {"ShardlineProducerRecordsFailed"},
	"sustained throttling":              {"ShardlineProducerThrottled", "ShardlineConsumerThrottled"},
}

// TestAlertRules checks each rule's shape and that its expression reads catalog metrics only.
func TestAlertRules(t *testing.T) {
	rules := loadRules(t)
	byName := map[string]rule{}
	for _, r := range rules {
		if r.Alert == "" {
			t.Errorf("recording rule %q: this file holds alerts only", r.Record)
			continue
		}
		if _, dup := byName[r.Alert]; dup {
			t.Errorf("alert %s is defined twice", r.Alert)
		}
		byName[r.Alert] = r
		if !strings.HasPrefix(r.Alert, "Shardline") {
			t.Errorf("alert %s: names start with Shardline", r.Alert)
		}
		if d, err := time.ParseDuration(r.For); err != nil || d <= 0 {
			t.Errorf("alert %s: for %q is not a positive duration", r.Alert, r.For)
		}
		if s := r.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, s)
		}
		if r.Annotations["summary"] == "" {
			t.Errorf("alert %s: no summary", r.Alert)
		}
		if !strings.Contains(r.Annotations["description"], "Action:") {
			t.Errorf("alert %s: the description does not say what to do (Action: ...)", r.Alert)
		}
		if strings.Contains(r.Expr, "${prefix}") {
			t.Errorf("alert %s: Grafana's ${prefix} in a rule", r.Alert)
		}
		if _, err := checkExpr(r.Expr); err != nil {
			t.Errorf("alert %s: %v", r.Alert, err)
		}
	}
	for what, names := range requiredAlerts {
		for _, n := range names {
			if _, ok := byName[n]; !ok {
				t.Errorf("no alert %s (%s)", n, what)
			}
		}
	}
	// The numbers, literally: over 60 s for 10 minutes.
	if r := byName["ShardlineIteratorAgeHigh"]; !strings.Contains(r.Expr, "> 60000") || r.For != "10m" {
		t.Errorf("ShardlineIteratorAgeHigh: expr %q for %q, want > 60000 (ms) for 10m", r.Expr, r.For)
	}
}

// TestAlertRuleTestsCoverEveryAlert requires, for every alert, a promtool case where it fires
// with exact labels and annotations and one where it must stay silent.
func TestAlertRuleTestsCoverEveryAlert(t *testing.T) {
	var tests ruleTests
	readYAML(t, rulesTestsFile, &tests)
	if !slices.Equal(tests.RuleFiles, []string{filepath.Base(rulesFile)}) {
		t.Errorf("%s tests rule_files %q, want [%s]", rulesTestsFile, tests.RuleFiles, filepath.Base(rulesFile))
	}
	fires, silent := map[string]bool{}, map[string]bool{}
	for _, tc := range tests.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) == 0 {
				silent[a.Alertname] = true
				continue
			}
			fires[a.Alertname] = true
			for _, e := range a.ExpAlerts {
				if e.ExpLabels["severity"] == "" || e.ExpAnnotations["summary"] == "" || e.ExpAnnotations["description"] == "" {
					t.Errorf("%q: %s fires without exact severity, summary and description", tc.Name, a.Alertname)
				}
			}
		}
	}
	for _, r := range loadRules(t) {
		if !fires[r.Alert] {
			t.Errorf("%s: no case where %s fires", rulesTestsFile, r.Alert)
		}
		if !silent[r.Alert] {
			t.Errorf("%s: no case where %s must not fire", rulesTestsFile, r.Alert)
		}
	}
}

// runPromtool runs promtool with args in dir and returns its combined output.
func runPromtool(t *testing.T, promtool, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(promtool, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestPromtoolRules runs what make check-observability runs: promtool check rules and
// promtool test rules.
func TestPromtoolRules(t *testing.T) {
	promtool := needTool(t, "promtool")
	if out, err := runPromtool(t, promtool, ".", "check", "rules", rulesFile); err != nil {
		t.Fatalf("promtool check rules %s: %v\n%s", rulesFile, err, out)
	}
	if out, err := runPromtool(t, promtool, ".", "test", "rules", rulesTestsFile); err != nil {
		t.Fatalf("promtool test rules %s: %v\n%s", rulesTestsFile, err, out)
	}
}

// ruleMutants are plausible mistakes in the rules, each of which the promtool cases must
// catch: a rule that passes its tests broken this way is not tested.
var ruleMutants = []struct {
	alert, why string
	mutate     func(r *rule)
}{
	{"ShardlineIteratorAgeHigh", "threshold raised past the fixture",
		func(r *rule) { r.Expr = strings.Replace(r.Expr, "> 60000", "> 100000", 1) }},
	{"ShardlineIteratorAgeHigh", "stale series of a worker that handed the shard off counted",
		func(r *rule) {
			r.Expr = "max by (job, stream_name, shard_id) (shardline_consumer_iterator_age_milliseconds) > 60000"
		}},
	{"ShardlineIteratorAgeHigh", "for shortened: 8 minutes behind would fire",
		func(r *rule) { r.For = "5m" }},
	{"ShardlineProducerRecordsFailed", "the first failures of a new series missed",
		func(r *rule) {
			r.Expr = "sum by (job, stream_name, error_type) (increase(shardline_producer_records_failed_total[5m])) > 0"
		}},
	{"ShardlineProducerErrorRate", "throttles counted as errors",
		func(r *rule) {
			r.Expr = strings.Replace(r.Expr, `{error_type!="ProvisionedThroughputExceededException"}`, "", 1)
		}},
	{"ShardlineConsumerErrorRate", "recovered errors counted",
		func(r *rule) {
			r.Expr = strings.Replace(r.Expr, `ProvisionedThroughputExceededException|ExpiredIteratorException|`, "", 1)
		}},
	{"ShardlineLeaseChurn", "one balancing burst fires",
		func(r *rule) { r.For = "5m" }},
	{"ShardlineLeaseChurn", "stolen leases not counted",
		func(r *rule) {
			r.Expr = "sum by (job, stream_name) (increase(shardline_consumer_lease_lost_total[10m])) > 2"
		}},
	{"ShardlineCheckpointFailures", "one burst at a rebalance fires",
		func(r *rule) { r.For = "2m" }},
	{"ShardlineNoLiveWorkers", "a worker seeing no live worker does not fire",
		func(r *rule) {
			r.Expr = strings.Replace(r.Expr, "(shardline_consumer_workers_live > 0)", "(shardline_consumer_workers_live)", 1)
		}},
	{"ShardlineProducerThrottled", "threshold lowered under the quiet case",
		func(r *rule) { r.Expr = strings.Replace(r.Expr, "> 0.1", "> 0.01", 1) }},
}

// TestPromtoolCatchesBrokenRules runs each mutant against the cases of its alert: promtool
// test rules must fail.
func TestPromtoolCatchesBrokenRules(t *testing.T) {
	promtool := needTool(t, "promtool")
	var rules ruleFile
	readYAML(t, rulesFile, &rules)
	var tests map[string]any
	readYAML(t, rulesTestsFile, &tests)
	// The files as this test rewrites them pass unmutated: a mutant fails for its mutation,
	// not for the rewriting.
	control := t.TempDir()
	writeYAML(t, filepath.Join(control, filepath.Base(rulesFile)), rules)
	writeYAML(t, filepath.Join(control, "cases.yml"), tests)
	if out, err := runPromtool(t, promtool, control, "test", "rules", "cases.yml"); err != nil {
		t.Fatalf("the rewritten rules and cases fail unmutated: %v\n%s", err, out)
	}
	for _, m := range ruleMutants {
		dir := t.TempDir()
		mutated := 0
		var f ruleFile
		for _, g := range rules.Groups {
			g2 := ruleGroup{Name: g.Name}
			for _, r := range g.Rules {
				if r.Alert == m.alert {
					before := r
					m.mutate(&r)
					if r.Expr != before.Expr || r.For != before.For {
						mutated++
					}
				}
				g2.Rules = append(g2.Rules, r)
			}
			f.Groups = append(f.Groups, g2)
		}
		if mutated != 1 {
			t.Errorf("mutant %s (%s) changed %d rules, want 1: the rule no longer reads as the mutant expects", m.alert, m.why, mutated)
			continue
		}
		writeYAML(t, filepath.Join(dir, filepath.Base(rulesFile)), f)
		writeYAML(t, filepath.Join(dir, "cases.yml"), casesOf(tests, m.alert))
		out, err := runPromtool(t, promtool, dir, "test", "rules", "cases.yml")
		if err == nil {
			t.Errorf("mutant %s (%s) passes promtool test rules: its cases do not test that", m.alert, m.why)
		} else if !strings.Contains(out, "alertname: "+m.alert) {
			t.Errorf("mutant %s (%s): promtool failed, but not on a case of that alert:\n%s", m.alert, m.why, out)
		}
	}
}

// casesOf returns the promtool test file with only the cases about alert.
func casesOf(tests map[string]any, alert string) map[string]any {
	out := map[string]any{}
	for k, v := range tests {
		out[k] = v
	}
	var kept []any
	for _, tc := range tests["tests"].([]any) {
		for _, a := range tc.(map[string]any)["alert_rule_test"].([]any) {
			if a.(map[string]any)["alertname"] == alert {
				kept = append(kept, tc)
				break
			}
		}
	}
	out["tests"] = kept
	return out
}

func writeYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
