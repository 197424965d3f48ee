package shardotel

// units maps the catalog's unit words to the UCUM case-sensitive codes OpenTelemetry expects.
// A count of things is a UCUM annotation in braces, as the semantic conventions write
// "{request}". The catalog's "" (a plain count whose noun is in the metric name) stays empty
// rather than becoming "1": "1" declares a dimensionless ratio, which OpenTelemetry's
// Prometheus exporter would suffix with _ratio.
var units = map[string]string{
	"seconds":      "s",
	"milliseconds": "ms",
	"bytes":        "By",
	"records":      "{record}",
	"":             "",
}

// Unit returns the OpenTelemetry unit of a catalog unit word: "s" for "seconds", "ms" for
// "milliseconds", "By" for "bytes", "{record}" for "records" and "" for "". A word the catalog
// gains later without a mapping here becomes an annotation, "{word}", which is valid UCUM and
// makes no claim about dimensions.
func Unit(catalogUnit string) string {
	if u, ok := units[catalogUnit]; ok {
		return u
	}
	return "{" + catalogUnit + "}"
}
