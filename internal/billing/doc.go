// Package billing prices image requests exactly and holds the budget-period and hold-sweeping
// helpers the gateway's Meter builds on.
//
// # Pricing
//
// An Engine turns a model's providers.Price and a canonical providers.Request into a Quote in
// the deployment currency. The rules (providers.PriceUnit), per image:
//
//	PerImage          amount
//	PerMegapixel      amount × (width × height / 1,048,576)
//	PerMegapixelStep  amount × (width × height / 1,048,576) × steps
//
// amount is the first matching PriceTier's (by operation, quality tier and size; empty tier
// fields match anything), else Price.Amount. The quality tier is the request's
// Extra["rendering_speed"] (a JSON string) when present, else Request.Quality, compared without
// regard to case. A price quoted in another currency is multiplied by the configured rate
// (Rates["CNY"] = "0.14": 1 CNY = 0.14 units of the deployment currency).
//
// Steps are the model's FixedSteps when set, else the request's Steps, else the model's
// DefaultSteps, else its MaxSteps (the worst case). A per-step price with none of these known is
// a configuration error that Engine.Validate reports at startup.
//
// The size is the model's Size.Fixed when set (such a model ignores the requested size), else
// the request's Width×Height. A request without a size is priced at the worst case it can
// produce: for an aspect ratio, the largest listed size of that ratio (else the largest listed
// size), else the largest size of that ratio within the model's bounds (MaxSide, MaxPixels),
// else the ratio at the pixel count of the model's Size.Default, else at 1 MP (1,048,576
// pixels); without an aspect ratio, the model's Size.Default, else its largest listed size,
// else the largest square within its bounds, else 1 MP. Quote.SizeEstimated says when the size
// was not the request's own, Fixed or Default.
//
// # Exactness and rounding
//
// Amounts are money.Amount micro-units. All arithmetic is exact (math/big.Rat, or int64 with
// 128-bit products when the numbers fit, as they do for every real price): the cost of one image
// is an exact rational number of micro-units of the deployment currency. The only rounding
// is of the amount charged for k images, Quote.For(k) = round(k × per-image cost), half up to the
// micro-unit. The hold of a request is For(n) for the n requested images at the worst-case size
// and steps; the settlement is For(charged) with charged ≤ n, and For is non-decreasing in k,
// so a settlement never exceeds its hold. Floats are never used for money.
//
// # Budgets
//
// PeriodStart maps a key's budget period to the start of the period that contains a time: the
// zero time for total budgets, UTC midnight for daily, the first of the month (UTC) for monthly.
// Holds and Balance queries use it as the period key. RunSweeper deletes expired holds (left by
// crashed processes) periodically.
package billing
