package billing

import (
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
	"strings"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/providers"
)

// megapixel is the pixel count of one megapixel in every pricing rule: 1024 × 1024.
const megapixel = 1 << 20

// estimatePixels is the size assumed when nothing else is known: 1 MP.
const estimatePixels = megapixel

// ExtraRenderingSpeed is the Request.Extra key whose JSON string value, when present, is the
// quality tier of a price (Ideogram's rendering_speed).
const ExtraRenderingSpeed = "rendering_speed"

// Quote is the price of one request in the deployment currency: the worst case of its n images,
// and the per-image cost that settles what was delivered.
type Quote struct {
	// Currency is the deployment currency.
	Currency string
	// Images is the number of images priced (the request's n, at least 1).
	Images int
	// PerImage is the cost of one image rounded half up to the micro-unit (for display; totals
	// are computed from the exact per-image cost, see For).
	PerImage money.Amount
	// Total is For(Images): what to hold before the upstream call.
	Total money.Amount

	// Width, Height and Pixels are the size priced (Pixels is what per-megapixel rules use; for
	// a 1 MP estimate of an aspect ratio, Width × Height only approximates it).
	Width, Height int
	Pixels        int64
	// SizeEstimated is set when the size is not the request's own, the model's fixed size or
	// its default, but the worst case or an estimate (see the package documentation).
	SizeEstimated bool
	// Steps is the number of steps priced (0 when the model's steps are unknown and do not
	// matter to its price).
	Steps int

	// Unit, ListCurrency and ListAmount are the matched rule: the list amount per unit in the
	// currency the vendor quotes. Tier is the index of the matched PriceTier, or -1 for
	// Price.Amount.
	Unit         providers.PriceUnit
	ListCurrency string
	ListAmount   money.Amount
	Tier         int
	// FreeImages is the model's free quota per key (Price.FreeImages).
	FreeImages int

	// exact is the cost of one image in micro-units of Currency, list the same in micro-units of
	// ListCurrency: reduced int64 fractions (small) when every step of the computation fits, as
	// it does for any real price, so a request pays for no math/big; otherwise exactBig and
	// listBig, never modified once made. priced is false for a zero quote.
	exact, list       frac
	small, priced     bool
	exactBig, listBig *big.Rat
	// For Rule: the matched tier (nil for Price.Amount), the conversion rate's text, and
	// whether the model has no price.
	tier     *providers.PriceTier
	rateText string
	unpriced bool
}

// Rule says in words how the per-image cost was reached, for example
// "CNY 0.0032 per megapixel-step × 0.5 MP (1024x512) × 4 steps = CNY 0.0064 per image".
// It is built when asked for (the quote endpoint, errors), not on every request.
func (q Quote) Rule() string {
	if q.unpriced {
		return "unpriced"
	}
	if !q.priced {
		return ""
	}
	var rule strings.Builder
	fmt.Fprintf(&rule, "%s %s per ", q.ListCurrency, q.ListAmount)
	switch q.Unit {
	case providers.PerImage:
		rule.WriteString("image")
	case providers.PerMegapixel:
		fmt.Fprintf(&rule, "megapixel × %s MP (%s)", q.Megapixels(), sizeText(q))
	case providers.PerMegapixelStep:
		fmt.Fprintf(&rule, "megapixel-step × %s MP (%s) × %d steps", q.Megapixels(), sizeText(q), q.Steps)
	}
	if q.tier != nil {
		fmt.Fprintf(&rule, " [%s]", tierText(*q.tier))
	}
	if q.Unit != providers.PerImage {
		fmt.Fprintf(&rule, " = %s %s per image", q.ListCurrency, microText(q.listRat()))
	}
	if q.ListCurrency != q.Currency {
		fmt.Fprintf(&rule, "; at %s %s per %s = %s %s per image", q.rateText, q.Currency, q.ListCurrency, q.Currency, microText(q.exactRat()))
	}
	return rule.String()
}

// ListFor is For in the list currency (ListCurrency): k images at the vendor's own amount.
func (q *Quote) ListFor(k int) money.Amount {
	if k <= 0 || !q.priced {
		return 0
	}
	a, _ := timesHalfUp(q.small, q.list, q.listBig, k)
	return a
}

// For is the cost of k images: k × the exact per-image cost, rounded half up to the micro-unit.
// It is non-decreasing in k, so For(k) ≤ For(Images) = Total for every k ≤ Images. k ≤ 0 costs
// nothing.
func (q *Quote) For(k int) money.Amount {
	if k <= 0 || !q.priced {
		return 0
	}
	a, _ := q.times(k)
	return a
}

// times is k × the exact per-image cost rounded half up, and whether it fits an Amount.
func (q *Quote) times(k int) (money.Amount, bool) {
	return timesHalfUp(q.small, q.exact, q.exactBig, k)
}

// timesHalfUp is k × the per-image cost (f when small, else r) rounded half up, and whether it
// fits an Amount. k > 0.
func timesHalfUp(small bool, f frac, r *big.Rat, k int) (money.Amount, bool) {
	if small {
		if a, ok := mulDivHalfUp(f.num, int64(k), f.den); ok {
			return a, true
		}
		r = f.rat()
	}
	return timesBig(r, k)
}

// timesBig is timesHalfUp past int64, out of its line: its big.Rats would be on the stack of
// every request's billing (deep in it) for a path no real price takes.
//
//go:noinline
func timesBig(r *big.Rat, k int) (money.Amount, bool) {
	return roundHalfUp(new(big.Rat).Mul(r, new(big.Rat).SetInt64(int64(k))))
}

func (q Quote) listRat() *big.Rat  { return ratOf(q.small, q.list, q.listBig) }
func (q Quote) exactRat() *big.Rat { return ratOf(q.small, q.exact, q.exactBig) }

// ratOf is a per-image cost as a big.Rat: f when small, else r.
func ratOf(small bool, f frac, r *big.Rat) *big.Rat {
	if small {
		return f.rat()
	}
	return r
}

// frac is a non-negative fraction num/den in lowest terms (den > 0).
type frac struct{ num, den int64 }

func (f frac) rat() *big.Rat { return big.NewRat(f.num, f.den) }

// fracOf is n/d in lowest terms, for n ≥ 0 and d > 0.
func fracOf(n, d int64) frac {
	g := gcd(n, d)
	return frac{n / g, d / g}
}

// mul is f×g in lowest terms, and whether it fits int64: cancelling across first keeps the
// products as small as they can be (and in lowest terms).
func (f frac) mul(g frac) (frac, bool) {
	a, b := gcd(f.num, g.den), gcd(g.num, f.den)
	num, ok1 := mul64(f.num/a, g.num/b)
	den, ok2 := mul64(f.den/b, g.den/a)
	return frac{num, den}, ok1 && ok2
}

// mul64 is a×b for non-negative a and b, and whether it fits int64.
func mul64(a, b int64) (int64, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	return int64(lo), hi == 0 && lo <= math.MaxInt64
}

// gcd of non-negative a and b, not both 0.
func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// mulDivHalfUp is a×k/den rounded half up, for non-negative a and k and a positive den, and
// whether it was computed (false when a×k overflows 64 bits: the caller uses math/big).
func mulDivHalfUp(a, k, den int64) (money.Amount, bool) {
	hi, lo := bits.Mul64(uint64(a), uint64(k))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	quo, rem := lo/uint64(den), lo%uint64(den)
	if rem != 0 && 2*rem >= uint64(den) { // 2·rem < 2·den ≤ 2^64: no overflow
		quo++
	}
	if quo > math.MaxInt64 {
		return 0, false
	}
	return money.Amount(quo), true
}

// ForCharged is the cost of delivered images of which free were paid from the key's free quota:
// For(delivered − free), nothing when free covers them all. The hold of a request whose
// store.ConsumeFreeImages returned free is ForCharged(Images, free).
func (q *Quote) ForCharged(delivered, free int) money.Amount {
	return q.For(delivered - max(free, 0))
}

// Settlement is what a finished request owes.
type Settlement struct {
	// Charged is the number of delivered images that are paid for.
	Charged int
	// FreeUsed is the number of delivered images paid from the free quota.
	FreeUsed int
	// FreeReturned is the number of free images taken before the call but not delivered: give
	// them back with store.ReturnFreeImages.
	FreeReturned int
	// Cost is For(Charged): settle the hold with it and record it in the ledger.
	Cost money.Amount
}

// Settle splits delivered images between the free images taken before the call (free, as
// store.ConsumeFreeImages returned) and paid ones. Free images are consumed first.
func (q *Quote) Settle(delivered, free int) Settlement {
	delivered, free = max(delivered, 0), max(free, 0)
	used := min(delivered, free)
	s := Settlement{Charged: delivered - used, FreeUsed: used, FreeReturned: free - used}
	s.Cost = q.For(s.Charged)
	return s
}

// Megapixels is Pixels in megapixels (2^20 pixels), exactly, as a decimal string.
func (q Quote) Megapixels() string {
	return decimalString(big.NewRat(q.Pixels, megapixel))
}

// Quote prices req on model m: the worst case for req.N images (at least one). A model without
// a price gets a zero quote and ErrUnpriced. Any other error means the price cannot be computed
// (a configuration problem Validate reports at startup, or an amount out of range).
func (e *Engine) Quote(m *providers.Model, req *providers.Request) (q Quote, err error) {
	err = e.QuoteInto(&q, m, req)
	return q, err
}

// QuoteInto is Quote into *q: a quote is 0.2 KB, and a caller deep in a request's stack keeps it
// on the heap rather than have it returned through two frames.
func (e *Engine) QuoteInto(q *Quote, m *providers.Model, req *providers.Request) error {
	*q = Quote{Currency: e.currency, Images: max(req.N, 1), Tier: -1}
	p := &m.Price
	q.FreeImages = max(p.FreeImages, 0)
	size, pixels, sizeKey, estimated := resolveSize(m, req)
	q.Width, q.Height, q.Pixels, q.SizeEstimated = size.W, size.H, pixels, estimated
	q.Steps = resolveSteps(m, req)
	if p.IsZero() {
		q.unpriced = true
		return quoteError("%w: %s", ErrUnpriced, m.ID)
	}
	rate, ok := e.rates[strings.ToUpper(p.Currency)]
	if !ok {
		return quoteError("billing: model %s: no conversion rate from %s to %s", m.ID, p.Currency, e.currency)
	}

	op := req.Operation
	if op == "" {
		op = providers.OpGenerate
	}
	quality := qualityKey(req)
	amount := p.Amount
	for i := range p.Tiers {
		if t := &p.Tiers[i]; tierMatches(t, op, quality, sizeKey) {
			amount, q.Tier, q.tier = t.Amount, i, &p.Tiers[i]
			break
		}
	}
	if amount < 0 {
		return quoteError("billing: model %s: negative price %s", m.ID, amount)
	}
	q.Unit, q.ListCurrency, q.ListAmount = p.Unit, strings.ToUpper(p.Currency), amount
	q.rateText = e.rateText[q.ListCurrency]

	// list is the exact cost of one image in micro-units of the list currency: the amount times
	// the unit's factors.
	factors := []frac{{int64(amount), 1}}
	switch p.Unit {
	case providers.PerImage:
	case providers.PerMegapixel:
		factors = append(factors, fracOf(pixels, megapixel))
	case providers.PerMegapixelStep:
		if q.Steps <= 0 {
			return quoteError("billing: model %s: priced per megapixel-step but the number of steps is unknown", m.ID)
		}
		factors = append(factors, fracOf(pixels, megapixel), frac{int64(q.Steps), 1})
	default:
		return quoteError("billing: model %s: unknown price unit %q", m.ID, p.Unit)
	}
	q.priced = true
	list, small := factors[0], pixels >= 0 && rate.small
	for _, f := range factors[1:] {
		if small {
			list, small = list.mul(f)
		}
	}
	var exact frac
	if small {
		exact, small = list.mul(rate.frac)
	}
	if small {
		q.list, q.exact, q.small = list, exact, true
	} else {
		// Past int64 (no real price comes here): the same product in math/big.
		q.listBig, q.exactBig = bigProduct(factors, rate.r)
	}
	var inRange bool
	if q.PerImage, inRange = q.times(1); !inRange {
		return quoteError("billing: model %s: cost per image out of range", m.ID)
	}
	if _, inRange = q.times(q.Images); !inRange {
		return quoteError("billing: model %s: cost of %d images out of range", m.ID, q.Images)
	}
	q.Total = q.For(q.Images)
	return nil
}

// quoteError is fmt.Errorf out of Quote's line: a quote is made deep in a request's stack, and
// every fmt.Errorf call site's arguments would be part of Quote's frame.
//
//go:noinline
func quoteError(format string, args ...any) error { return fmt.Errorf(format, args...) }

// bigProduct is the product of factors, and that times rate, in math/big (out of QuoteInto's
// line, for the same reason as timesBig).
//
//go:noinline
func bigProduct(factors []frac, rate *big.Rat) (list, exact *big.Rat) {
	list = factors[0].rat()
	for _, f := range factors[1:] {
		list.Mul(list, f.rat())
	}
	return list, new(big.Rat).Mul(list, rate)
}

// qualityKey is the request's quality tier: Extra["rendering_speed"] when it is a JSON string,
// else Quality.
func qualityKey(req *providers.Request) string {
	if raw, ok := req.Extra[ExtraRenderingSpeed]; ok {
		var s string
		// Trimmed as the adapter trims it before sending: the tier billed is the speed rendered.
		if json.Unmarshal(raw, &s) == nil && strings.TrimSpace(s) != "" {
			return strings.TrimSpace(s)
		}
	}
	return req.Quality
}

// tierMatches reports whether t applies: each set field equals the request's (quality without
// regard to case, size as WxH).
func tierMatches(t *providers.PriceTier, op providers.Operation, quality string, size providers.Size) bool {
	if t.Operation != "" && t.Operation != op {
		return false
	}
	if t.Quality != "" && !strings.EqualFold(t.Quality, quality) {
		return false
	}
	if t.Size != "" {
		ts, err := providers.ParseSize(t.Size)
		if err != nil || size.IsZero() || ts != size {
			return false
		}
	}
	return true
}

func tierText(t providers.PriceTier) string {
	var parts []string
	if t.Operation != "" {
		parts = append(parts, string(t.Operation))
	}
	if t.Quality != "" {
		parts = append(parts, "quality "+t.Quality)
	}
	if t.Size != "" {
		parts = append(parts, t.Size)
	}
	if len(parts) == 0 {
		return "tier"
	}
	return strings.Join(parts, ", ")
}

func sizeText(q Quote) string {
	s := strconv.Itoa(q.Width) + "x" + strconv.Itoa(q.Height)
	if q.SizeEstimated {
		s += ", worst case"
	}
	return s
}

// resolveSteps is the number of steps an image runs: FixedSteps, else the request's, else
// DefaultSteps, else MaxSteps (the worst case), else 0 (unknown).
func resolveSteps(m *providers.Model, req *providers.Request) int {
	switch {
	case m.FixedSteps > 0:
		return m.FixedSteps
	case req.Steps > 0:
		return req.Steps
	case m.DefaultSteps > 0:
		return m.DefaultSteps
	case m.MaxSteps > 0:
		return m.MaxSteps
	}
	return 0
}

// resolveSize returns the size to price, its pixel count, the size tiers match against (zero
// for estimates, which match no size tier) and whether it is a worst case or an estimate.
func resolveSize(m *providers.Model, req *providers.Request) (size providers.Size, pixels int64, key providers.Size, estimated bool) {
	r := m.Size
	own := func(s providers.Size) (providers.Size, int64, providers.Size, bool) {
		return s, int64(s.W) * int64(s.H), s, false
	}
	switch {
	case !r.Fixed.IsZero():
		return own(r.Fixed)
	case req.Width > 0 && req.Height > 0:
		return own(providers.Size{W: req.Width, H: req.Height})
	}
	if s, ok := fromSource(req); ok && req.AspectRatio == "" {
		// What the operation makes of the source, not a size sent: an estimate.
		return s, int64(s.W) * int64(s.H), providers.Size{}, true
	}
	if rw, rh, ok := parseRatio(req.AspectRatio); ok {
		// The largest listed size of the ratio, else the largest listed size.
		if s, ok := largest(r.Sizes, func(s providers.Size) bool { return int64(s.W)*int64(rh) == int64(s.H)*int64(rw) }); ok {
			return s, int64(s.W) * int64(s.H), s, true
		}
		if s, ok := largest(r.Sizes, nil); ok {
			return s, int64(s.W) * int64(s.H), s, true
		}
		if s, ok := largestWithin(r, rw, rh); ok {
			return s, int64(s.W) * int64(s.H), providers.Size{}, true
		}
		target := int64(estimatePixels)
		if !r.Default.IsZero() {
			target = int64(r.Default.W) * int64(r.Default.H)
		}
		return ratioAt(rw, rh, target), target, providers.Size{}, true
	}
	if !r.Default.IsZero() {
		return own(r.Default)
	}
	if s, ok := largest(r.Sizes, nil); ok {
		return s, int64(s.W) * int64(s.H), s, true
	}
	if s, ok := largestWithin(r, 1, 1); ok {
		return s, int64(s.W) * int64(s.H), providers.Size{}, true
	}
	return providers.Size{W: 1024, H: 1024}, estimatePixels, providers.Size{}, true
}

// fromSource is the output size of an operation on an uploaded image that sets no size of its
// own: an edit or a background replacement keeps the source's size, and an upscale doubles it
// (Ideogram's, the one provider with upscale; seed 002: "将参考图片分辨率提升至 2 倍").
func fromSource(req *providers.Request) (providers.Size, bool) {
	if len(req.Images) == 0 || req.Images[0].Width <= 0 || req.Images[0].Height <= 0 {
		return providers.Size{}, false
	}
	s := providers.Size{W: req.Images[0].Width, H: req.Images[0].Height}
	switch req.Operation {
	case providers.OpEdit, providers.OpReplaceBackground:
		return s, true
	case providers.OpUpscale:
		return providers.Size{W: 2 * s.W, H: 2 * s.H}, true
	}
	return providers.Size{}, false
}

// parseRatio reads "W:H" (also "WxH", Ideogram's form) with positive integers.
func parseRatio(s string) (w, h int, ok bool) {
	s = strings.TrimSpace(strings.ToLower(s))
	a, b, found := strings.Cut(s, ":")
	if !found {
		a, b, found = strings.Cut(s, "x")
	}
	if !found {
		return 0, 0, false
	}
	w, err1 := strconv.Atoi(strings.TrimSpace(a))
	h, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || w <= 0 || h <= 0 || w > 1000 || h > 1000 {
		return 0, 0, false
	}
	return w, h, true
}

// largest returns the size with the most pixels among those keep accepts (all when nil).
func largest(sizes []providers.Size, keep func(providers.Size) bool) (providers.Size, bool) {
	var best providers.Size
	var bestPx int64 = -1
	for _, s := range sizes {
		if keep != nil && !keep(s) {
			continue
		}
		if px := int64(s.W) * int64(s.H); px > bestPx {
			best, bestPx = s, px
		}
	}
	return best, bestPx >= 0
}

// largestWithin returns the largest size of ratio rw:rh that the rule's bounds (MaxSide,
// MaxPixels, Multiple) allow, or false when the rule has no upper bound.
func largestWithin(r providers.SizeRule, rw, rh int) (providers.Size, bool) {
	if r.MaxSide <= 0 && r.MaxPixels <= 0 {
		return providers.Size{}, false
	}
	step := max(r.Multiple, 1)
	fits := func(w, h int64) bool {
		if r.MaxSide > 0 && (w > int64(r.MaxSide) || h > int64(r.MaxSide)) {
			return false
		}
		return r.MaxPixels <= 0 || w*h <= int64(r.MaxPixels)
	}
	// Walk the longer side down from its bound; the shorter side follows the ratio, rounded
	// down to the multiple. The first size that fits is the largest (pixels grow with the side).
	long, short := int64(rw), int64(rh)
	if short > long {
		long, short = short, long
	}
	top := int64(r.MaxSide)
	if r.MaxPixels > 0 {
		// l × (l·short/long) ≤ MaxPixels needs l² ≤ MaxPixels·long/short (plus rounding slack).
		if b := isqrt(int64(r.MaxPixels)*long/short) + int64(step); top <= 0 || b < top {
			top = b
		}
	}
	top -= top % int64(step)
	for l := top; l >= int64(step); l -= int64(step) {
		s := l * short / long
		s -= s % int64(step)
		if s <= 0 {
			break
		}
		if fits(l, s) {
			if rw >= rh {
				return providers.Size{W: int(l), H: int(s)}, true
			}
			return providers.Size{W: int(s), H: int(l)}, true
		}
	}
	return providers.Size{}, false
}

// ratioAt returns a size of ratio rw:rh with about target pixels (for display only: the price
// uses target itself).
func ratioAt(rw, rh int, target int64) providers.Size {
	w := isqrt(target * int64(rw) / int64(rh))
	if w <= 0 {
		w = 1
	}
	h := max(w*int64(rh)/int64(rw), 1)
	return providers.Size{W: int(w), H: int(h)}
}

// isqrt is the integer square root (floor) of a non-negative n.
func isqrt(n int64) int64 {
	if n <= 0 {
		return 0
	}
	return new(big.Int).Sqrt(big.NewInt(n)).Int64()
}

// roundHalfUp rounds a non-negative rational to the nearest integer, halves up, and reports
// whether it fits an Amount.
func roundHalfUp(r *big.Rat) (money.Amount, bool) {
	num, den := r.Num(), r.Denom()
	quo, rem := new(big.Int).QuoRem(num, den, new(big.Int))
	if rem.Sign() != 0 {
		// Half up: add one when 2·|rem| ≥ den (amounts are never negative).
		if new(big.Int).Lsh(rem.Abs(rem), 1).Cmp(den) >= 0 {
			quo.Add(quo, big.NewInt(int64(num.Sign())))
		}
	}
	if !quo.IsInt64() {
		return 0, false
	}
	return money.Amount(quo.Int64()), true
}

// microText prints an exact number of micro-units as a decimal amount ("0.0064"), with as many
// digits as it needs: every amount here has a terminating decimal expansion, because the
// denominators are powers of two (megapixels) and of ten (decimal rates).
func microText(micro *big.Rat) string {
	return decimalString(new(big.Rat).Quo(micro, big.NewRat(1_000_000, 1)))
}

// decimalString prints r exactly when its expansion terminates within 40 digits (else rounded
// to 40), without trailing zeros.
func decimalString(r *big.Rat) string {
	s := r.FloatString(40)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}
