package billing_test

import (
	"encoding/json"
	"fmt"

	"github.com/imagegw/imagegw/internal/billing"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/providers"
)

func ExampleEngine_Quote() {
	e, err := billing.New("USD", map[string]string{"CNY": "0.14"})
	if err != nil {
		panic(err)
	}
	turbo := &providers.Model{ID: "stabilityai/stable-diffusion-3-5-large-turbo", FixedSteps: 4,
		Price: providers.Price{Unit: providers.PerMegapixelStep, Currency: "CNY", Amount: money.MustParse("0.0032")}}
	q, _ := e.Quote(turbo, &providers.Request{Width: 1024, Height: 512, N: 2})
	fmt.Println(q.Rule())
	fmt.Println("hold", q.Total, q.Currency, "; one image delivered:", q.For(1))

	v3 := &providers.Model{ID: "V_3", Price: providers.Price{Unit: providers.PerImage, Currency: "USD", Amount: money.MustParse("0.06"),
		Tiers: []providers.PriceTier{{Operation: providers.OpGenerate, Quality: "QUALITY", Amount: money.MustParse("0.09")}}}}
	q, _ = e.Quote(v3, &providers.Request{Operation: providers.OpGenerate, N: 3,
		Extra: map[string]json.RawMessage{"rendering_speed": json.RawMessage(`"QUALITY"`)}})
	fmt.Println(q.Rule())
	fmt.Println("hold", q.Total, q.Currency)
	// Output:
	// CNY 0.0032 per megapixel-step × 0.5 MP (1024x512) × 4 steps = CNY 0.0064 per image; at 0.14 USD per CNY = USD 0.000896 per image
	// hold 0.001792 USD ; one image delivered: 0.000896
	// USD 0.09 per image [generate, quality QUALITY]
	// hold 0.27 USD
}
