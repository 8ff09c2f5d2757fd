package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/imagegw/imagegw/internal/auth"
	"github.com/imagegw/imagegw/internal/gatewaytest"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/store"
)

// Seed 004's free quotas belong to the upstream account: Modelverse's FLUX.1-dev gives 10 free
// images ("| black-forest-labs/FLUX.1-dev | 英文模型 | 10 |") once per channel, whichever of its two
// id spellings asks and whichever key. They lower the operator's cost, not the keys' price.
// Three keys ask for 4 images each, in turn, at the catalog's CNY 0.18 an image:
//
//	each key pays 4 × 0.18 = 0.72 (2.16 together);
//	the upstream charges nothing for the first 10 images and 2 × 0.18 = 0.36 for the last two.
func TestModelverseFreeImagesArePerChannelNotPerKey(t *testing.T) {
	env := startSim(t)
	env["IMAGEGW_CURRENCY"] = "CNY"
	g := gatewaytest.Start(t, gatewaytest.Options{Env: env})
	var keyIDs []string
	for i, model := range []string{"modelverse/black-forest-labs/FLUX.1-dev", "modelverse/black-forest-labs/flux.1-dev", "modelverse/black-forest-labs/FLUX.1-dev"} {
		secret := g.NewKey(t, &store.Key{Name: "k"})
		k, err := g.App.Store.KeyByHash(context.Background(), auth.Hash(secret))
		if err != nil {
			t.Fatal(err)
		}
		keyIDs = append(keyIDs, k.ID)
		req, _ := http.NewRequest("POST", g.URL+"/v1/images/generations",
			strings.NewReader(`{"model":"`+model+`","prompt":"a red fox","n":4,"size":"1024x1024","response_format":"url"}`))
		req.Header.Set("Authorization", "Bearer "+secret)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Imagegw-Cost") != "0.72" {
			t.Fatalf("key %d (%s): %d cost %q: %s", i, model, resp.StatusCode, resp.Header.Get("X-Imagegw-Cost"), body)
		}
	}
	var price, cost money.Amount
	deadline := time.Now().Add(10 * time.Second)
	for {
		evs, err := g.App.Store.ListUsage(context.Background(), store.UsageFilter{}, 0)
		if err != nil {
			t.Fatal(err)
		}
		price, cost = 0, 0
		n := 0
		for _, e := range evs {
			for _, id := range keyIDs {
				if e.KeyID == id {
					price, cost, n = price+e.Cost, cost+e.UpstreamCost, n+1
				}
			}
		}
		if n == 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if price.String() != "2.16" || cost.String() != "0.36" {
		t.Fatalf("keys paid %s (want 2.16), the upstream charged %s (want 0.36: 10 of 12 images free)", price, cost)
	}
}
