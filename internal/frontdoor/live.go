package frontdoor

import "github.com/imagegw/imagegw/internal/catalog"

// currentCatalog is the catalog a new request resolves its model in: Options.Live's (one atomic
// load), else Options.Catalog. The request then keeps the entry it found, with its routes and
// adapters, to its end: a configuration reload changes what later requests get, never what a
// request in flight uses.
func (h *Handler) currentCatalog() *catalog.Catalog {
	if h.o.Live != nil {
		return h.o.Live.Load()
	}
	return h.o.Catalog
}
