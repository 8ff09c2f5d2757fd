package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/imagegw/imagegw/internal/config"
)

// ReloadResult is what a configuration reload applied (POST /admin/v1/reload).
type ReloadResult struct {
	Object string `json:"object"` // "config_reload"
	// Generation is the configuration generation now in force: 1 at start, one more per reload
	// applied.
	Generation int64     `json:"generation"`
	ReloadedAt time.Time `json:"reloaded_at"`
	// Changed are the settings that changed and were applied ("providers[sf-main]", "models",
	// "billing.markup", "routing.cooldown", …); empty when the file matched what was running.
	Changed []string `json:"changed"`
	// RestartRequired are settings that changed in the file but keep their running value until
	// the gateway restarts ("addr", "log.level", …).
	RestartRequired []string `json:"restart_required"`
}

// reload answers POST /admin/v1/reload: the configuration is read again (the file serve was
// started with and the environment) and checked as serve checks it. On any problem nothing
// changes and the answer is a 422 listing every problem; otherwise it is applied without
// dropping requests in flight and the answer says what changed.
func (a *API) reload(w http.ResponseWriter, r *http.Request) {
	res, err := a.Reload(r.Context())
	if err != nil {
		writeConfigError(w, err)
		return
	}
	if res.Changed == nil {
		res.Changed = []string{}
	}
	if res.RestartRequired == nil {
		res.RestartRequired = []string{}
	}
	writeJSON(w, http.StatusOK, res)
}

// configProblem is the OpenAI error envelope of a refused reload, with every problem listed.
type configProblem struct {
	Message  string   `json:"message"`
	Type     string   `json:"type"`
	Param    *string  `json:"param"`
	Code     string   `json:"code"`
	Problems []string `json:"problems"`
}

// writeConfigError answers a refused reload: 422 invalid_config, the problems one by one (each
// naming its setting) and all of them in the message.
func writeConfigError(w http.ResponseWriter, err error) {
	var problems []string
	var ce *config.Error
	var joined interface{ Unwrap() []error }
	switch {
	case errors.As(err, &ce):
		for _, p := range ce.Problems {
			problems = append(problems, p.Error())
		}
	case errors.As(err, &joined):
		for _, p := range joined.Unwrap() {
			problems = append(problems, p.Error())
		}
	default:
		problems = []string{err.Error()}
	}
	msg := fmt.Sprintf("The configuration was not reloaded; the running one stays. %d problem", len(problems))
	if len(problems) != 1 {
		msg += "s"
	}
	msg += ": " + strings.Join(problems, "; ")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusUnprocessableEntity)
	_ = json.NewEncoder(w).Encode(map[string]configProblem{"error": {Message: msg, Type: "invalid_request_error",
		Code: "invalid_config", Problems: problems}})
}

// Reloader reloads the gateway's configuration (internal/app's App.ReloadFile).
type Reloader func(ctx context.Context) (ReloadResult, error)
