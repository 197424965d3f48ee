package dynamodb

// WithPageLimit caps the items of each Query page, so that tests exercise pagination with a
// few rows instead of a megabyte of them.
func WithPageLimit(n int32) Option { return func(c *config) { c.pageLimit = n } }
