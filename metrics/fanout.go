package metrics

// Fanout returns a Collector that passes every call to each of collectors, in order. Untyped
// nil and [Nop] entries are skipped, and Fanout collectors among the arguments are flattened,
// so a disabled collector costs nothing. With no real collector left Fanout returns Nop{}, and
// with exactly one it returns that collector itself.
//
// The result is as safe for concurrent use as its members, which the Collector contract
// requires anyway. A slow member slows every call: members should not block.
func Fanout(collectors ...Collector) Collector {
	var all fanout
	for _, c := range collectors {
		switch c := c.(type) {
		case nil, Nop, *Nop:
		case fanout:
			all = append(all, c...)
		default:
			all = append(all, c)
		}
	}
	switch len(all) {
	case 0:
		return Nop{}
	case 1:
		return all[0]
	}
	return all
}

// fanout is a Collector that forwards to several. It is never nested and never holds Nop;
// it is built fresh, so callers cannot change it after Fanout returned.
type fanout []Collector

func (f fanout) Add(name Name, delta float64, l Labels) {
	for _, c := range f {
		c.Add(name, delta, l)
	}
}

func (f fanout) Set(name Name, value float64, l Labels) {
	for _, c := range f {
		c.Set(name, value, l)
	}
}

func (f fanout) Observe(name Name, value float64, l Labels) {
	for _, c := range f {
		c.Observe(name, value, l)
	}
}
