package meter_test

import (
	"github.com/imagegw/imagegw/internal/auth"
	"github.com/imagegw/imagegw/internal/gatewaytest"
)

func hashOf(g *gatewaytest.Gateway) string { return auth.Hash(g.Key) }
func hashOfSecret(s string) string         { return auth.Hash(s) }
