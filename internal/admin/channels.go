package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/imagegw/imagegw/internal/frontdoor"
	"github.com/imagegw/imagegw/providers"
)

// channelList answers GET /admin/v1/channels: every configured channel with its routing and its
// health per upstream model, as this replica sees it (states, success rates and latencies are
// per replica; a channel's switch is every replica's).
func (a *API) channelList(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": a.Router.Snapshot()})
}

// ChannelFields are the settable fields of a channel (PATCH /admin/v1/channels/{name}).
type ChannelFields struct {
	Enabled *bool
}

// ParseChannelFields reads a JSON object of channel fields: {"enabled": false}. Unknown fields
// and bad values are errors naming the field.
func ParseChannelFields(body []byte) (ChannelFields, error) {
	var f ChannelFields
	raw, keys, err := jsonObject(body)
	if err != nil {
		return f, err
	}
	for _, k := range keys {
		switch k {
		case "enabled":
			var b bool
			if err := json.Unmarshal(raw[k], &b); err != nil {
				return f, providers.ParamError(k, "Invalid value for 'enabled': expected true or false.")
			}
			f.Enabled = &b
		default:
			return f, unknownParam(k)
		}
	}
	if f.Enabled == nil {
		return f, providers.ParamError("enabled", "Missing required parameter: 'enabled'.")
	}
	return f, nil
}

// switchChannel answers PATCH /admin/v1/channels/{name}: the switch is stored, so every replica
// follows within routing.switch_poll, and applied on this one at once.
func (a *API) switchChannel(w http.ResponseWriter, r *http.Request) {
	name, ok := pathID(w, r, "name")
	if !ok {
		return
	}
	if !a.Router.Known(name) {
		frontdoor.WriteError(w, &providers.Error{Kind: providers.KindModelNotFound, Code: "channel_not_found", Param: "name",
			Message: fmt.Sprintf("No configured channel is named '%s'.", name)})
		return
	}
	body, err := readBody(r)
	if err != nil {
		frontdoor.WriteError(w, err)
		return
	}
	f, err := ParseChannelFields(body)
	if err != nil {
		frontdoor.WriteError(w, err)
		return
	}
	if err := a.Store.SetChannelEnabled(r.Context(), name, *f.Enabled, time.Now().UTC()); err != nil {
		frontdoor.WriteError(w, &providers.Error{Kind: providers.KindUnavailable, Message: "The switch could not be stored.", Err: err})
		return
	}
	a.Router.SetEnabled(name, *f.Enabled)
	for _, v := range a.Router.Snapshot() {
		if v.Name == name {
			writeJSON(w, http.StatusOK, v)
			return
		}
	}
	frontdoor.WriteError(w, errors.New("admin: switched channel missing from the snapshot"))
}
