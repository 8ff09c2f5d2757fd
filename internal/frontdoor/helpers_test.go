package frontdoor_test

import "github.com/imagegw/imagegw/internal/store"

func keyFor(models ...string) *store.Key { return &store.Key{Name: "restricted", Models: models} }
