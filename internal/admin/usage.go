package admin

import (
	"errors"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/imagegw/imagegw/internal/frontdoor"
	"github.com/imagegw/imagegw/internal/store"
	"github.com/imagegw/imagegw/internal/usage"
	"github.com/imagegw/imagegw/providers"
)

// usageParams are the query parameters GET /admin/v1/usage takes (the CLI's flag names).
var usageParams = map[string]bool{"key": true, "model": true, "since": true, "until": true, "by": true, "limit": true}

// UsageHandler serves GET /admin/v1/usage: the ledger's events (newest first, at most limit,
// default 100) or, with by=day|model|key|channel, its sums; filtered by key, model, since (24h,
// 7d, a date or an RFC 3339 time) and until. Amounts are decimal strings in JSON: price is what
// keys were charged, cost what providers charge, margin the difference. With key, the
// answer includes the key's budget position in its current period (spent, held, remaining),
// and an unknown key is a 404. currency is the deployment currency.
func UsageHandler(st store.Store, currency string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		vals := r.URL.Query()
		names := make([]string, 0, len(vals))
		for k := range vals {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			if !usageParams[k] {
				frontdoor.WriteError(w, unknownParam(k))
				return
			}
			if len(vals[k]) > 1 {
				frontdoor.WriteError(w, providers.ParamError(k, "Give '%s' at most once.", k))
				return
			}
		}
		if k := vals.Get("key"); k != "" {
			if err := CheckID("key", k); err != nil {
				frontdoor.WriteError(w, err)
				return
			}
		}
		if err := CheckText("model", vals.Get("model"), MaxModelLen); err != nil {
			frontdoor.WriteError(w, err)
			return
		}
		now := time.Now()
		q := usage.Query{KeyID: vals.Get("key"), Model: vals.Get("model"), By: vals.Get("by")}
		var err error
		if q.Since, err = usage.ParseSince(vals.Get("since"), now); err != nil {
			frontdoor.WriteError(w, providers.ParamError("since", "Invalid value for 'since': %v.", cleanQueryErr(err)))
			return
		}
		if q.Until, err = usage.ParseSince(vals.Get("until"), now); err != nil {
			frontdoor.WriteError(w, providers.ParamError("until", "Invalid value for 'until': %v.", cleanQueryErr(err)))
			return
		}
		if _, err := usage.ParseBy(q.By); err != nil {
			frontdoor.WriteError(w, providers.ParamError("by", "Invalid value for 'by': must be day, model, key or channel."))
			return
		}
		if s := vals.Get("limit"); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 || n > usage.MaxLimit {
				frontdoor.WriteError(w, providers.ParamError("limit", "Invalid value for 'limit': must be an integer from 1 to %d.", usage.MaxLimit))
				return
			}
			q.Limit = n
		}
		rep, err := usage.Build(r.Context(), st, q, currency, now)
		switch {
		case errors.Is(err, store.ErrNotFound):
			frontdoor.WriteError(w, &providers.Error{Kind: providers.KindModelNotFound, Code: "key_not_found", Param: "key", Message: "No such key."})
			return
		case errors.Is(err, usage.ErrInvalidQuery):
			frontdoor.WriteError(w, providers.ParamError("", "Invalid usage query: %v.", cleanQueryErr(err)))
			return
		case err != nil:
			frontdoor.WriteError(w, &providers.Error{Kind: providers.KindUnavailable, Message: "The usage ledger is unavailable.", Err: err})
			return
		}
		writeJSON(w, http.StatusOK, rep)
	}
}

// cleanQueryErr drops the ErrInvalidQuery prefix from a query error's message.
func cleanQueryErr(err error) string {
	msg := err.Error()
	if p := usage.ErrInvalidQuery.Error() + ": "; len(msg) > len(p) && msg[:len(p)] == p {
		return msg[len(p):]
	}
	return msg
}
