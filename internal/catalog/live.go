package catalog

import "sync/atomic"

// Live holds the catalog in force. A configuration reload swaps it whole (Store); a request
// reads it once (Load, one atomic load) and keeps the catalog it read, with its routes and
// their adapters, to its end, so requests in flight finish on what they started with.
type Live struct{ p atomic.Pointer[Catalog] }

// NewLive returns a Live holding c.
func NewLive(c *Catalog) *Live {
	l := &Live{}
	l.p.Store(c)
	return l
}

// Load returns the catalog in force.
func (l *Live) Load() *Catalog { return l.p.Load() }

// Store puts c in force for every request that loads the catalog from now on.
func (l *Live) Store(c *Catalog) { l.p.Store(c) }
