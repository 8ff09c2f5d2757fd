// Package catalog maps the public model names clients send to routes: ordered channels (a
// provider adapter instance with its upstream model id), the model's capabilities and its price.
//
// Names resolve as: a configured alias; "<channel>/<upstream id>"; "<provider>/<upstream id>";
// or the bare upstream id when exactly one provider offers it. Upstream ids contain '/', so a
// name is never split on '/': every accepted form is a key of one map.
package catalog

import (
	"fmt"
	"math/big"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/providers"
)

// Channel is one configured upstream account.
type Channel struct {
	Name     string
	Type     string
	Provider providers.Provider
	// Models restricts the channel to these upstream ids; empty means its whole catalog.
	Models []string
	// Priority is the channel's routing tier (0 is tried first, then 1, …) and Weight its share
	// of its tier's traffic (0: a standby, tried only after the tier's weighted channels).
	// Routing overrides both per upstream model id.
	Priority int
	Weight   int
	Routing  map[string]Routing
}

// Routing overrides a channel's priority or weight for one of its models (nil: the channel's).
type Routing struct {
	Priority *int
	Weight   *int
}

// Routing strategies of an entry (Entry.Strategy): the order its routes are tried in.
const (
	// StrategyPriority: priority tiers, a weighted random split inside a tier (the default).
	StrategyPriority = "priority"
	// StrategyCheapest: the route whose price for the request is lowest first.
	StrategyCheapest = "cheapest"
	// StrategyFastest: the route with the lowest recent latency first.
	StrategyFastest = "fastest"
)

// Strategies are the valid Entry.Strategy values ("" is StrategyPriority).
var Strategies = []string{StrategyPriority, StrategyCheapest, StrategyFastest}

// Route is one way to serve a model: a channel and the upstream model on it.
type Route struct {
	Channel  string
	Type     string
	Provider providers.Provider
	Model    *providers.Model
	// Price is what a key pays for an image this route delivers: the alias's own price when it
	// sets one, else the price of the channel's model (with any re-pricing applied). Routes of
	// one entry may differ: a fallback is billed at its own price, not the primary's.
	Price providers.Price
	// Cost is what the provider charges the operator for it: the channel's model price as the
	// catalog (or a model's define) states it, before any price set in config.
	Cost providers.Price
	// Priority and Weight place the route among the entry's others (see Channel); Group is the
	// index of the alias target it came from (0 for the target, 1 for the first fallback, …):
	// every route of a group is tried before the next group's.
	Priority int
	Weight   int
	Group    int
}

// Entry is one public model name.
type Entry struct {
	Name    string
	OwnedBy string // provider type of the primary route
	// Model holds the primary route's capabilities with the effective price.
	Model providers.Model
	// Operations the primary route supports (model ∩ adapter).
	Operations []providers.Operation
	Routes     []Route
	// Strategy orders the routes (one of Strategies; "" is StrategyPriority).
	Strategy string
	listed   bool
	// keyed caches the entry as keys with their own markup see it (money.Amount → *Entry).
	keyed *sync.Map
}

// Supports reports whether the entry's primary route takes op.
func (e *Entry) Supports(op providers.Operation) bool { return slices.Contains(e.Operations, op) }

// Catalog resolves names. It is immutable once built and safe for concurrent use.
type Catalog struct {
	byName   map[string]*Entry
	list     []*Entry
	channels []Channel
	pinned   []Route
}

// Channels returns the channels the catalog was built over, in order.
func (c *Catalog) Channels() []Channel { return c.channels }

// Pinned returns one route per channel and upstream model (what "<channel>/<id>" names), in
// channel order: every pair a call can go to.
func (c *Catalog) Pinned() []Route {
	out := make([]Route, 0, len(c.pinned))
	for _, r := range c.pinned {
		if e := c.byName[r.Channel+"/"+r.Model.ID]; e != nil && len(e.Routes) == 1 {
			r = e.Routes[0]
		}
		out = append(out, r)
	}
	return out
}

// Build assembles the catalog from channels (in priority order) and model configuration.
func Build(channels []Channel, models []config.ModelConfig) (*Catalog, error) {
	c := &Catalog{byName: map[string]*Entry{}, channels: channels}
	ownPrice := map[*Entry]bool{}  // aliases with a price of their own
	byType := map[string][]Route{} // "<type>/<id>" → routes
	bare := map[string][]Route{}   // "<id>" → routes
	var typedNames []string
	// Models defined in config join the catalogs of the channels their target names (a channel,
	// or every channel of a provider type). The target's first segment is a channel or type name,
	// which cannot contain '/'; the rest is the upstream id.
	defined := map[string][]providers.Model{}
	var errs []string
	for i, mc := range models {
		if mc.Define == nil {
			continue
		}
		first, id, _ := strings.Cut(mc.Target, "/")
		var price providers.Price
		if mc.Price != nil {
			p, err := mc.Price.Parse()
			if err != nil {
				errs = append(errs, fmt.Sprintf("models[%d].price: %v", i, err))
				continue
			}
			p.Source = "config"
			price = p
		}
		m, err := mc.Define.Model(id, price)
		if err != nil {
			errs = append(errs, fmt.Sprintf("models[%d].define: %v", i, err))
			continue
		}
		matched := false
		for _, ch := range channels {
			if ch.Name == first || ch.Type == first {
				defined[ch.Name] = append(defined[ch.Name], m)
				matched = true
			}
		}
		if !matched {
			errs = append(errs, fmt.Sprintf("models[%d]: no channel or provider %q for the defined model", i, first))
		}
	}
	for _, ch := range channels {
		ms := append(ch.Provider.Models(), defined[ch.Name]...)
		offered := map[string]bool{}
		for i := range ms {
			m := &ms[i]
			if len(ch.Models) > 0 && !slices.Contains(ch.Models, m.ID) {
				continue
			}
			offered[m.ID] = true
			r := Route{Channel: ch.Name, Type: ch.Type, Provider: ch.Provider, Model: m, Priority: ch.Priority, Weight: ch.Weight}
			if o, ok := ch.Routing[m.ID]; ok {
				if o.Priority != nil {
					r.Priority = *o.Priority
				}
				if o.Weight != nil {
					r.Weight = *o.Weight
				}
			}
			c.pinned = append(c.pinned, r)
			c.add(ch.Name+"/"+m.ID, []Route{r}, false)
			tn := ch.Type + "/" + m.ID
			if _, ok := byType[tn]; !ok {
				typedNames = append(typedNames, tn)
			}
			byType[tn] = append(byType[tn], r)
			bare[m.ID] = append(bare[m.ID], r)
		}
		ids := make([]string, 0, len(ch.Routing))
		for id := range ch.Routing {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			if !offered[id] {
				errs = append(errs, fmt.Sprintf("channel %s: model_routing: the channel offers no model %q", ch.Name, id))
			}
		}
	}
	for _, tn := range typedNames {
		c.add(tn, byType[tn], false)
	}
	hidden := map[string]bool{}
	for _, mc := range models {
		if mc.Hidden {
			hidden[mc.Target] = true
		}
	}
	// A bare id is one model over every channel that offers it, whatever their provider types,
	// in channel order ("<channel>/<id>" pins one; "<type>/<id>" the channels of one type).
	for id, rs := range bare {
		if _, taken := c.byName[id]; !taken {
			c.add(id, rs, false)
		}
	}
	// Each offered model is listed once, by its bare id.
	for _, tn := range typedNames {
		id := byType[tn][0].Model.ID
		if hidden[id] || hidden[tn] {
			continue
		}
		if e := c.byName[id]; e != nil {
			e.listed = true
		}
	}
	for i, mc := range models {
		if mc.Define != nil && mc.Name == "" {
			continue
		}
		var routes []Route
		for g, target := range append([]string{mc.Target}, mc.Fallbacks...) {
			e, err := c.Lookup(target)
			if err != nil {
				errs = append(errs, fmt.Sprintf("models[%d]: target %q: %v", i, target, err))
				continue
			}
			for _, r := range e.Routes {
				r.Group = g
				routes = append(routes, r)
			}
		}
		if len(routes) == 0 {
			continue
		}
		var price *providers.Price
		if mc.Price != nil {
			p, err := mc.Price.Parse()
			if err != nil {
				errs = append(errs, fmt.Sprintf("models[%d].price: %v", i, err))
				continue
			}
			p.Source = "config"
			price = &p
		}
		name := mc.Name
		if name == "" {
			// Hiding, re-pricing or routing the target itself.
			if mc.Strategy != "" {
				c.byName[mc.Target].Strategy = mc.Strategy
			}
			if price != nil {
				// A channel-qualified target re-prices that channel's model; a bare or
				// type-qualified one the model on every channel of its type.
				t := c.byName[mc.Target].Routes[0]
				oneChannel := mc.Target == t.Channel+"/"+t.Model.ID && t.Channel != t.Type
				for _, x := range c.byName {
					p := x.Routes[0]
					if p.Type == t.Type && p.Model.ID == t.Model.ID && (!oneChannel || p.Channel == t.Channel) {
						x.Model.Price = *price
					}
				}
			}
			continue
		}
		if _, taken := c.byName[name]; taken && c.byName[name].listed {
			// An alias shadows an upstream name of the same spelling: the alias wins.
			c.byName[name].listed = false
		}
		e := c.add(name, routes, true)
		e.Strategy = mc.Strategy
		if price != nil {
			e.Model.Price = *price
			ownPrice[e] = true
		}
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("catalog: %s", strings.Join(errs, "; "))
	}
	c.priceRoutes(ownPrice)
	for _, e := range c.byName {
		if e.listed {
			c.list = append(c.list, e)
		}
	}
	sort.Slice(c.list, func(i, j int) bool { return c.list[i].Name < c.list[j].Name })
	return c, nil
}

// priceRoutes sets each route's price, once every re-pricing is applied: an alias with its own
// price charges it on every route; any other route charges its channel's model price, and the
// entry's price is its primary route's.
func (c *Catalog) priceRoutes(ownPrice map[*Entry]bool) {
	for _, e := range c.byName {
		routes := make([]Route, len(e.Routes)) // entries may share a backing array
		copy(routes, e.Routes)
		for i := range routes {
			r := &routes[i]
			r.Cost = r.Model.Price
			switch q := c.byName[r.Channel+"/"+r.Model.ID]; {
			case ownPrice[e]:
				r.Price = e.Model.Price
			case q != nil && len(q.Routes) == 1 && q.Routes[0].Channel == r.Channel:
				r.Price = q.Model.Price
			default:
				r.Price = r.Model.Price
			}
		}
		e.Routes = routes
		e.Model.Price = routes[0].Price
	}
}

// MixedPrices reports whether the entry's routes charge different prices (a fallback is billed at
// its own price).
func (e *Entry) MixedPrices() bool {
	for i := range e.Routes[1:] { // by index: a Route is 0.25 KB to copy
		if !e.Routes[1+i].Price.Equal(&e.Routes[0].Price) {
			return true
		}
	}
	return false
}

func (c *Catalog) add(name string, routes []Route, listed bool) *Entry {
	primary := routes[0]
	e := &Entry{
		Name:    name,
		OwnedBy: primary.Type,
		Model:   *primary.Model,
		Routes:  routes,
		listed:  listed,
		keyed:   new(sync.Map),
	}
	for _, op := range primary.Model.Operations {
		if providers.Supports(primary.Provider, op) {
			e.Operations = append(e.Operations, op)
		}
	}
	c.byName[name] = e
	return e
}

// NotFoundError says a name resolves to no model.
type NotFoundError struct {
	Name string
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("the model %q does not exist", e.Name) }

// Lookup resolves a public name.
func (c *Catalog) Lookup(name string) (*Entry, error) {
	if e, ok := c.byName[name]; ok {
		return e, nil
	}
	return nil, &NotFoundError{Name: name}
}

// List returns the listed entries sorted by name.
func (c *Catalog) List() []*Entry { return c.list }

// Markup sets what keys pay for images of models without a price of their own in config: their
// cost (the catalog's price) × markup, rounded half up to the micro-unit, per rate and tier.
// byName holds markups of single models by public name (an alias or any name of a model); the
// deployment's applies to the others. "" or "1" means none. A price set in config is never
// marked up: it is the price.
func (c *Catalog) Markup(deployment string, byName map[string]string) error {
	parse := func(s string) (*big.Rat, error) {
		if s == "" {
			return nil, nil
		}
		a, err := money.Parse(s)
		if err != nil || a <= 0 {
			return nil, fmt.Errorf("markup %q: want a positive decimal such as 1.2", s)
		}
		r := big.NewRat(int64(a), money.Scale)
		if r.Cmp(big.NewRat(1, 1)) == 0 {
			return nil, nil
		}
		return r, nil
	}
	def, err := parse(deployment)
	if err != nil {
		return fmt.Errorf("billing.%w", err)
	}
	for name, e := range c.byName {
		m := def
		if s, ok := byName[name]; ok {
			if m, err = parse(s); err != nil {
				return fmt.Errorf("models (%s): %w", name, err)
			}
		}
		if m == nil {
			continue
		}
		routes := make([]Route, len(e.Routes))
		copy(routes, e.Routes)
		for i := range routes {
			if p := routes[i].Price; !p.IsZero() && p.Source != "config" {
				routes[i].Price = markedUp(p, m)
			}
		}
		e.Routes = routes
		e.Model.Price = routes[0].Price
	}
	return nil
}

// WithMarkup is the entry as a key with its own markup m (money.Amount 1_500_000 is ×1.5) sees
// it: each route not priced in config charges its cost × m, rounded half up to the micro-unit per
// rate and tier, in place of the model's or the deployment's markup. The result is cached.
func (e *Entry) WithMarkup(m money.Amount) *Entry {
	if e.keyed != nil {
		if x, ok := e.keyed.Load(m); ok {
			return x.(*Entry)
		}
	}
	r := big.NewRat(int64(m), money.Scale)
	x := *e
	x.keyed = nil
	x.Routes = make([]Route, len(e.Routes))
	copy(x.Routes, e.Routes)
	for i := range x.Routes {
		rt := &x.Routes[i]
		switch {
		case rt.Price.Source == "config" || rt.Cost.IsZero():
		case r.Cmp(big.NewRat(1, 1)) == 0:
			rt.Price = rt.Cost
		default:
			rt.Price = markedUp(rt.Cost, r)
		}
	}
	x.Model.Price = x.Routes[0].Price
	if e.keyed != nil {
		v, _ := e.keyed.LoadOrStore(m, &x)
		return v.(*Entry)
	}
	return &x
}

// markedUp is p with every amount multiplied by m.
func markedUp(p providers.Price, m *big.Rat) providers.Price {
	mul := func(a money.Amount) money.Amount {
		r := new(big.Rat).Mul(big.NewRat(int64(a), 1), m)
		// Half up to the micro-unit (amounts are positive).
		q := new(big.Int).Quo(new(big.Int).Add(new(big.Int).Mul(r.Num(), big.NewInt(2)), r.Denom()), new(big.Int).Mul(r.Denom(), big.NewInt(2)))
		return money.Amount(q.Int64())
	}
	out := p
	out.Amount = mul(p.Amount)
	out.Tiers = make([]providers.PriceTier, len(p.Tiers))
	for i, t := range p.Tiers {
		t.Amount = mul(t.Amount)
		out.Tiers[i] = t
	}
	out.Source = p.Source + " × markup " + strings.TrimRight(strings.TrimRight(m.FloatString(6), "0"), ".")
	return out
}
