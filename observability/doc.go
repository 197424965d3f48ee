// Package observability holds Shardline's Grafana dashboard and Prometheus alerting rules,
// and the tests that check them; it has no code of its own.
//
//	grafana/shardline-dashboard.json       the dashboard (import it into Grafana)
//	prometheus/shardline-alerts.yml        the alerting rules (a Prometheus rule_files entry)
//	prometheus/shardline-alerts_test.yml   promtool test rules: where each alert fires and where not
//
// Both read the metrics of [github.com/shardline/kinesis/metrics/prometheus] under the
// namespace "shardline" (shardprom.WithNamespace("shardline")): the dashboard through its
// "Metric prefix" variable, the rules literally.
//
// go test ./observability checks that every PromQL expression names only metrics of
// [github.com/shardline/kinesis/metrics.Catalog] with their labels, runs promtool check rules
// and promtool test rules (and makes sure the rule tests catch broken rules), and runs a real
// Prometheus on a loopback port that scrapes a producer and two consumer workers working
// against the local stack: every dashboard query must parse, the panels must return data,
// every rule must evaluate without error, and promtool check metrics must accept the
// exposition. localstack/up installs Prometheus (Debian package prometheus) when promtool is
// missing.
package observability
