package billing

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/imagegw/imagegw/providers"
)

// ErrUnpriced is returned by Engine.Quote for a model that has no price: serving it would give
// images away, so the caller decides (refuse, or admit at zero cost for unbudgeted keys).
var ErrUnpriced = errors.New("billing: model has no price")

var currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)

// Engine prices requests in one deployment currency. It is immutable after New and safe for
// concurrent use.
type Engine struct {
	currency string
	rates    map[string]rate   // currency → units of the deployment currency per unit
	rateText map[string]string // the configured rates, for rule texts
}

// rate is a conversion rate, also as an int64 fraction when it fits one (small).
type rate struct {
	r     *big.Rat
	frac  frac
	small bool
}

func newRate(r *big.Rat) rate {
	x := rate{r: r}
	if num, den := r.Num(), r.Denom(); num.IsInt64() && den.IsInt64() && num.Sign() > 0 {
		x.frac, x.small = frac{num.Int64(), den.Int64()}, true
	}
	return x
}

// New returns an engine that keeps money in currency (an ISO 4217 code such as "USD") and
// converts prices quoted in other currencies with rates: rates["CNY"] = "0.14" means one CNY is
// 0.14 units of currency. Rates are exact decimal strings and must be positive. A rate for the
// deployment currency itself, when given, must be 1.
func New(currency string, rates map[string]string) (*Engine, error) {
	cur := strings.ToUpper(strings.TrimSpace(currency))
	if !currencyRE.MatchString(cur) {
		return nil, fmt.Errorf("billing: currency %q is not a 3-letter currency code", currency)
	}
	e := &Engine{currency: cur, rates: map[string]rate{cur: newRate(big.NewRat(1, 1))}, rateText: map[string]string{cur: "1"}}
	var errs []error
	keys := make([]string, 0, len(rates))
	for k := range rates {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		c := strings.ToUpper(strings.TrimSpace(k))
		v := strings.TrimSpace(rates[k])
		if !currencyRE.MatchString(c) {
			errs = append(errs, fmt.Errorf("billing: rates: %q is not a 3-letter currency code", k))
			continue
		}
		r, ok := parseDecimal(v)
		if !ok || r.Sign() <= 0 {
			errs = append(errs, fmt.Errorf("billing: rates.%s: %q is not a positive decimal", c, v))
			continue
		}
		if c == cur {
			if r.Cmp(big.NewRat(1, 1)) != 0 {
				errs = append(errs, fmt.Errorf("billing: rates.%s: the deployment currency's own rate must be 1, not %s", c, v))
			}
			continue
		}
		e.rates[c] = newRate(r)
		e.rateText[c] = v
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return e, nil
}

// parseDecimal reads a plain decimal number ("0.14", "7", "1.5e-3" is refused) exactly.
func parseDecimal(s string) (*big.Rat, bool) {
	if s == "" || strings.ContainsAny(s, "eE/") {
		return nil, false
	}
	r, ok := new(big.Rat).SetString(s)
	return r, ok
}

// Currency is the deployment currency, upper case.
func (e *Engine) Currency() string { return e.currency }

// HasRate reports whether prices quoted in currency can be converted.
func (e *Engine) HasRate(currency string) bool {
	_, ok := e.rates[strings.ToUpper(currency)]
	return ok
}

// CheckPrice reports every problem with p that would make a request unpriceable or mispriced:
// an unknown unit, a currency without a rate, a negative amount, a tier that can never match.
// An unset price (p.IsZero()) is not checked: see Validate.
func (e *Engine) CheckPrice(p providers.Price) error {
	if p.IsZero() {
		return nil
	}
	var errs []error
	switch p.Unit {
	case providers.PerImage, providers.PerMegapixel, providers.PerMegapixelStep:
	default:
		errs = append(errs, fmt.Errorf("unit %q is not %s, %s or %s", p.Unit, providers.PerImage, providers.PerMegapixel, providers.PerMegapixelStep))
	}
	if p.Currency == "" {
		errs = append(errs, errors.New("no currency"))
	} else if !e.HasRate(p.Currency) {
		errs = append(errs, fmt.Errorf("no conversion rate from %s to %s (set billing.rates.%s)", strings.ToUpper(p.Currency), e.currency, strings.ToUpper(p.Currency)))
	}
	if p.Amount < 0 {
		errs = append(errs, fmt.Errorf("negative amount %s", p.Amount))
	}
	if p.FreeImages < 0 {
		errs = append(errs, fmt.Errorf("negative free_images %d", p.FreeImages))
	}
	for i, t := range p.Tiers {
		if t.Amount < 0 {
			errs = append(errs, fmt.Errorf("tiers[%d]: negative amount %s", i, t.Amount))
		}
		if t.Operation != "" && !slices.Contains(providers.Operations, t.Operation) {
			errs = append(errs, fmt.Errorf("tiers[%d]: unknown operation %q", i, t.Operation))
		}
		if t.Size != "" {
			if _, err := providers.ParseSize(t.Size); err != nil {
				errs = append(errs, fmt.Errorf("tiers[%d]: %w", i, err))
			}
		}
	}
	return errors.Join(errs...)
}

// Validate checks the prices of every model a deployment serves, keyed by public model name,
// and is meant to run at startup so that configuration errors (a missing conversion rate above
// all) stop the gateway instead of failing requests. err joins every problem found, each naming
// its model. unpriced lists, sorted, the models without a price: Quote refuses them with
// ErrUnpriced, and the caller decides whether that is fatal.
func (e *Engine) Validate(models map[string]*providers.Model) (unpriced []string, err error) {
	names := make([]string, 0, len(models))
	for n := range models {
		names = append(names, n)
	}
	sort.Strings(names)
	var errs []error
	for _, n := range names {
		m := models[n]
		if m == nil || m.Price.IsZero() {
			unpriced = append(unpriced, n)
			continue
		}
		if perr := e.CheckPrice(m.Price); perr != nil {
			errs = append(errs, fmt.Errorf("billing: model %q: price: %w", n, perr))
		}
		if m.Price.Unit == providers.PerMegapixelStep && m.FixedSteps <= 0 && m.DefaultSteps <= 0 && m.MaxSteps <= 0 {
			errs = append(errs, fmt.Errorf("billing: model %q: priced per megapixel-step but has no fixed, default or maximum steps "+
				"to price a request that sends none", n))
		}
	}
	return unpriced, errors.Join(errs...)
}
