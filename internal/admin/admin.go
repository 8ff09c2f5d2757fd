// Package admin is the admin HTTP API (bearer IMAGEGW_ADMIN_TOKEN): API keys and usage. Its JSON
// fields carry the CLI flags' names (name, models, expires_at, budget, budget_period, rpm, ipm,
// mppm, concurrency, map_nearest, markup). It is not mounted when no admin token is configured.
package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/imagegw/imagegw/internal/auth"
	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/frontdoor"
	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/internal/router"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/providers"
)

// API serves the admin endpoints.
type API struct {
	Store store.Store
	Auth  *auth.Authenticator
	Token string
	// Usage serves GET /admin/v1/usage when set.
	Usage http.HandlerFunc
	// Router serves GET and PATCH /admin/v1/channels when set.
	Router *router.Router
	// Reload serves POST /admin/v1/reload when set.
	Reload Reloader
}

// Routes mounts /admin/v1 on r.
func (a *API) Routes(r chi.Router) {
	r.Route("/admin/v1", func(r chi.Router) {
		r.Use(a.authorize)
		r.Post("/keys", a.create)
		r.Get("/keys", a.list)
		r.Get("/keys/{id}", a.get)
		r.Patch("/keys/{id}", a.update)
		r.Delete("/keys/{id}", a.revoke)
		if a.Usage != nil {
			r.Get("/usage", a.Usage)
		}
		if a.Router != nil {
			r.Get("/channels", a.channelList)
			r.Patch("/channels/{name}", a.switchChannel)
		}
		if a.Reload != nil {
			r.Post("/reload", a.reload)
		}
	})
}

func (a *API) authorize(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !auth.AdminTokenOK(r.Header.Get("Authorization"), a.Token) {
			frontdoor.WriteError(w, &providers.Error{Kind: providers.KindUnauthenticated, Code: "invalid_admin_token",
				Message: "The admin API needs 'Authorization: Bearer <IMAGEGW_ADMIN_TOKEN>'."})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// KeyView is a key as the admin API and the CLI show it. Secret is set only on creation.
type KeyView struct {
	ID           string     `json:"id"`
	Object       string     `json:"object"`
	Name         string     `json:"name"`
	Key          string     `json:"key,omitempty"`
	Prefix       string     `json:"prefix"`
	Models       []string   `json:"models"`
	CreatedAt    time.Time  `json:"created_at"`
	ExpiresAt    *time.Time `json:"expires_at"`
	RevokedAt    *time.Time `json:"revoked_at"`
	Status       string     `json:"status"`
	Budget       *string    `json:"budget"`
	BudgetPeriod string     `json:"budget_period"`
	RPM          *int       `json:"rpm"`
	IPM          *int       `json:"ipm"`
	MPPM         *int       `json:"mppm"`
	Concurrency  *int       `json:"concurrency"`
	MapNearest   *bool      `json:"map_nearest"`
	// Markup is the key's own markup over the provider's cost ("1.5"); null means the model's
	// or the deployment's.
	Markup *string `json:"markup"`
}

// View renders a key.
func View(k *store.Key, now time.Time) KeyView {
	v := KeyView{ID: k.ID, Object: "api_key", Name: k.Name, Prefix: k.Prefix, Models: k.Models, CreatedAt: k.CreatedAt,
		ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt, BudgetPeriod: k.BudgetPeriod, RPM: k.RPM, IPM: k.IPM, MPPM: k.MPPM,
		Concurrency: k.Concurrency, MapNearest: k.MapNearest, Status: "active"}
	if v.Models == nil {
		v.Models = []string{}
	}
	if k.Budget != nil {
		s := k.Budget.String()
		v.Budget = &s
	}
	if k.Markup != nil {
		s := k.Markup.String()
		v.Markup = &s
	}
	switch {
	case k.RevokedAt != nil:
		v.Status = "revoked"
	case k.ExpiresAt != nil && !k.ExpiresAt.After(now):
		v.Status = "expired"
	}
	return v
}

// Fields are the settable fields of a key, shared by create and update (JSON and CLI flags).
type Fields struct {
	Name         *string
	Models       *[]string
	ExpiresAt    *time.Time
	ClearExpiry  bool
	Budget       *money.Amount
	ClearBudget  bool
	BudgetPeriod *string
	RPM          *int
	IPM          *int
	MPPM         *int
	Concurrency  *int
	MapNearest   *bool
	Markup       *money.Amount
	ClearMarkup  bool
}

// Bounds of a key's fields and of the ids and names the admin API takes. Values past them are
// a 400 naming the field, never a store error.
const (
	// MaxIDLen bounds a key id (in a path or a query) in bytes.
	MaxIDLen = 128
	// MaxNameLen bounds a key's name in bytes.
	MaxNameLen = 200
	// MaxModelLen bounds one model name in bytes; MaxModels the number of models of a key.
	MaxModelLen = 200
	MaxModels   = 1000
	// MaxLimit is the largest rpm, ipm, mppm or concurrency: the store keeps them as 32-bit
	// integers.
	MaxLimit = 1<<31 - 1
	// MaxBudget is the largest budget: a billion units of the deployment currency, far from
	// where sums of amounts could overflow.
	MaxBudget = money.Amount(1_000_000_000 * money.Scale)
	// MaxMarkup is the largest markup of a key (×100); the smallest is one micro-unit above 0.
	MaxMarkup = money.Amount(100 * money.Scale)
)

// CheckText reports whether s is usable as an id or a name: valid UTF-8 of printable characters
// (no control or format characters; spaces are fine), at most maxLen bytes. The error is a 400
// naming param.
func CheckText(param, s string, maxLen int) error {
	if len(s) > maxLen {
		return providers.ParamError(param, "Invalid value for '%s': longer than %d bytes.", param, maxLen)
	}
	if !utf8.ValidString(s) {
		return providers.ParamError(param, "Invalid value for '%s': not valid UTF-8.", param)
	}
	for i, r := range s {
		// Graphic: letters, marks, numbers, punctuation, symbols and spaces; the zero-width
		// joiners that emoji sequences use are fine too.
		if !unicode.IsGraphic(r) && r != '\u200c' && r != '\u200d' {
			return providers.ParamError(param, "Invalid value for '%s': it must be printable text (found U+%04X at byte %d).", param, r, i)
		}
	}
	return nil
}

// CheckID validates a key id from a path or a query (400 naming param when malformed).
func CheckID(param, id string) error {
	if id == "" {
		return providers.ParamError(param, "Missing required parameter: '%s'.", param)
	}
	return CheckText(param, id, MaxIDLen)
}

// Validate checks the values of the fields: the name and model names printable and bounded,
// the limits from 0 to MaxLimit, the budget from 0 to MaxBudget. The errors are 400s naming the
// field (the admin API's JSON name; the CLI's flag has the same name). ParseFields calls it; the
// CLI calls it on the fields its flags give.
func (f Fields) Validate() error {
	if f.Name != nil {
		if err := CheckText("name", *f.Name, MaxNameLen); err != nil {
			return err
		}
	}
	if f.Models != nil {
		if len(*f.Models) > MaxModels {
			return providers.ParamError("models", "Invalid value for 'models': more than %d models.", MaxModels)
		}
		for _, m := range *f.Models {
			if m == "" {
				return providers.ParamError("models", "Invalid value for 'models': a model name is empty.")
			}
			if err := CheckText("models", m, MaxModelLen); err != nil {
				return err
			}
		}
	}
	for _, l := range []struct {
		name string
		v    *int
	}{{"rpm", f.RPM}, {"ipm", f.IPM}, {"mppm", f.MPPM}, {"concurrency", f.Concurrency}} {
		if l.v != nil && (*l.v < 0 || *l.v > MaxLimit) {
			return providers.ParamError(l.name, "Invalid value for '%s': must be an integer from 0 to %d (0: unlimited).", l.name, MaxLimit)
		}
	}
	if f.Budget != nil && (*f.Budget < 0 || *f.Budget > MaxBudget) {
		return providers.ParamError("budget", "Invalid value for 'budget': must be from 0 to %s.", MaxBudget)
	}
	if f.Markup != nil && (*f.Markup <= 0 || *f.Markup > MaxMarkup) {
		return providers.ParamError("markup", "Invalid value for 'markup': must be a decimal above 0 and at most %s (1.2: the provider's cost + 20%%).", MaxMarkup)
	}
	return nil
}

// ParseFields reads a JSON object of key fields. Unknown fields, bad values, out-of-range
// limits, budgets and markups and malformed names are errors naming the field (see Validate).
// null clears expires_at, budget and markup.
func ParseFields(body []byte, now time.Time) (Fields, error) {
	var f Fields
	raw, keys, err := jsonObject(body)
	if err != nil {
		return f, err
	}
	for _, k := range keys {
		v := raw[k]
		isNull := string(v) == "null"
		var err error
		switch k {
		case "name":
			err = json.Unmarshal(v, &f.Name)
		case "models":
			var ms []string
			if err = json.Unmarshal(v, &ms); err == nil {
				f.Models = &ms
			}
		case "expires_at":
			if isNull {
				f.ClearExpiry = true
				continue
			}
			var t time.Time
			if err = json.Unmarshal(v, &t); err == nil {
				f.ExpiresAt = &t
			}
		case "expires_in":
			var s string
			if err = json.Unmarshal(v, &s); err == nil {
				var d time.Duration
				if d, err = config.ParseDuration(s); err == nil && d > 0 {
					t := now.Add(d).UTC()
					f.ExpiresAt = &t
				} else if err == nil {
					err = errors.New("must be positive")
				}
			}
		case "budget":
			if isNull {
				f.ClearBudget = true
				continue
			}
			s := strings.Trim(string(v), `"`)
			var a money.Amount
			if a, err = money.Parse(s); err == nil && (a < 0 || a > MaxBudget) {
				err = fmt.Errorf("must be from 0 to %s", MaxBudget)
			} else if err != nil {
				err = fmt.Errorf("must be a decimal amount from 0 to %s", MaxBudget)
			}
			f.Budget = &a
		case "markup":
			if isNull {
				f.ClearMarkup = true
				continue
			}
			s := strings.Trim(string(v), `"`)
			var a money.Amount
			if a, err = money.Parse(s); err != nil {
				err = fmt.Errorf("must be a decimal above 0 and at most %s", MaxMarkup)
			}
			f.Markup = &a
		case "budget_period":
			var s string
			if err = json.Unmarshal(v, &s); err == nil && !slices.Contains([]string{store.PeriodTotal, store.PeriodDaily, store.PeriodMonthly}, s) {
				err = errors.New("must be total, daily or monthly")
			}
			f.BudgetPeriod = &s
		case "rpm", "ipm", "mppm", "concurrency":
			var n int
			if err = json.Unmarshal(v, &n); err == nil && (n < 0 || n > MaxLimit) {
				err = fmt.Errorf("must be an integer from 0 to %d (0: unlimited)", MaxLimit)
			}
			switch k {
			case "rpm":
				f.RPM = &n
			case "ipm":
				f.IPM = &n
			case "mppm":
				f.MPPM = &n
			case "concurrency":
				f.Concurrency = &n
			}
		case "map_nearest":
			err = json.Unmarshal(v, &f.MapNearest)
		default:
			return f, unknownParam(k)
		}
		if err != nil {
			return f, providers.ParamError(k, "Invalid value for '%s': %v.", k, cleanErr(err))
		}
	}
	return f, f.Validate()
}

// jsonObject reads body as one JSON object: its members, and their names sorted, so that of
// several bad fields the same one is reported every time.
func jsonObject(body []byte) (map[string]json.RawMessage, []string, error) {
	var raw map[string]json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&raw); err != nil || raw == nil {
		return nil, nil, providers.ParamError("", "The request body must be a JSON object.")
	}
	return raw, slices.Sorted(maps.Keys(raw)), nil
}

// unknownParam is the error for a field or query parameter the admin API does not have.
func unknownParam(name string) error {
	return &providers.Error{Kind: providers.KindInvalidRequest, Param: name, Code: "unknown_parameter", Message: fmt.Sprintf("Unknown parameter: '%s'.", name)}
}

func cleanErr(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "expected " + te.Type.String()
	}
	return err.Error()
}

// Apply sets the fields on a new key.
func (f Fields) Apply(k *store.Key) {
	if f.Name != nil {
		k.Name = *f.Name
	}
	if f.Models != nil {
		k.Models = *f.Models
	}
	if f.ExpiresAt != nil {
		t := f.ExpiresAt.UTC()
		k.ExpiresAt = &t
	}
	k.Budget = f.Budget
	if f.BudgetPeriod != nil {
		k.BudgetPeriod = *f.BudgetPeriod
	}
	k.RPM, k.IPM, k.MPPM, k.Concurrency, k.MapNearest = f.RPM, f.IPM, f.MPPM, f.Concurrency, f.MapNearest
	k.Markup = f.Markup
}

// Update converts the fields into a store update.
func (f Fields) Update() store.KeyUpdate {
	return store.KeyUpdate{Name: f.Name, Models: f.Models, ExpiresAt: f.ExpiresAt, ClearExpiry: f.ClearExpiry,
		Budget: f.Budget, ClearBudget: f.ClearBudget, BudgetPeriod: f.BudgetPeriod, RPM: f.RPM, IPM: f.IPM,
		MPPM: f.MPPM, Concurrency: f.Concurrency, MapNearest: f.MapNearest, Markup: f.Markup, ClearMarkup: f.ClearMarkup}
}

func readBody(r *http.Request) ([]byte, error) {
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(nil, r.Body, 1<<20)); err != nil {
		return nil, providers.ParamError("", "The request body could not be read.")
	}
	return buf.Bytes(), nil
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		frontdoor.WriteError(w, err)
		return
	}
	now := time.Now()
	f, err := ParseFields(body, now)
	if err != nil {
		frontdoor.WriteError(w, err)
		return
	}
	if f.Name == nil || strings.TrimSpace(*f.Name) == "" {
		frontdoor.WriteError(w, providers.ParamError("name", "Missing required parameter: 'name'."))
		return
	}
	k := &store.Key{}
	f.Apply(k)
	secret, err := auth.Create(r.Context(), a.Store, k)
	if err != nil {
		frontdoor.WriteError(w, &providers.Error{Kind: providers.KindUnavailable, Message: "The key could not be stored.", Err: err})
		return
	}
	v := View(k, now)
	v.Key = secret
	writeJSON(w, http.StatusCreated, v)
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	ks, err := a.Store.ListKeys(r.Context())
	if err != nil {
		frontdoor.WriteError(w, &providers.Error{Kind: providers.KindUnavailable, Message: "The key store is unavailable.", Err: err})
		return
	}
	now := time.Now()
	out := make([]KeyView, 0, len(ks))
	for _, k := range ks {
		out = append(out, View(k, now))
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": out})
}

// pathID returns the path parameter param (a key's {id}, a channel's {name}), or writes the 400
// for a malformed one. chi routes on the escaped path when the request's escaping is not the
// canonical one ("%1b"), so the parameter is unescaped here in that case.
func pathID(w http.ResponseWriter, r *http.Request, param string) (string, bool) {
	id := chi.URLParam(r, param)
	if r.URL.RawPath != "" {
		u, err := url.PathUnescape(id)
		if err != nil {
			frontdoor.WriteError(w, providers.ParamError(param, "Invalid value for '%s': malformed escaping.", param))
			return "", false
		}
		id = u
	}
	if err := CheckID(param, id); err != nil {
		frontdoor.WriteError(w, err)
		return "", false
	}
	return id, true
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	k, err := a.Store.Key(r.Context(), id)
	if err != nil {
		notFoundOr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, View(k, time.Now()))
}

func (a *API) update(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	body, err := readBody(r)
	if err != nil {
		frontdoor.WriteError(w, err)
		return
	}
	f, err := ParseFields(body, time.Now())
	if err != nil {
		frontdoor.WriteError(w, err)
		return
	}
	k, err := a.Store.UpdateKey(r.Context(), id, f.Update())
	if err != nil {
		notFoundOr(w, err)
		return
	}
	a.Auth.Forget(id)
	writeJSON(w, http.StatusOK, View(k, time.Now()))
}

func (a *API) revoke(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r, "id")
	if !ok {
		return
	}
	if err := a.Store.RevokeKey(r.Context(), id, time.Now().UTC()); err != nil {
		notFoundOr(w, err)
		return
	}
	a.Auth.Forget(id)
	k, err := a.Store.Key(r.Context(), id)
	if err != nil {
		notFoundOr(w, err)
		return
	}
	writeJSON(w, http.StatusOK, View(k, time.Now()))
}

func notFoundOr(w http.ResponseWriter, err error) {
	if errors.Is(err, store.ErrNotFound) {
		frontdoor.WriteError(w, &providers.Error{Kind: providers.KindModelNotFound, Code: "key_not_found", Param: "id", Message: "No such key."})
		return
	}
	frontdoor.WriteError(w, &providers.Error{Kind: providers.KindUnavailable, Message: "The key store is unavailable.", Err: err})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
