package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/imagegw/imagegw/internal/app"
	"github.com/imagegw/imagegw/internal/config"
	"github.com/imagegw/imagegw/internal/router"
	"github.com/imagegw/imagegw/internal/store"
)

// ChannelInfo is a configured channel as `imagegw channels list --json` prints it: its routing
// from config and its switch from the store.
type ChannelInfo struct {
	Name     string `json:"name"`
	Type     string `json:"type"`
	Enabled  bool   `json:"enabled"`
	Priority int    `json:"priority"`
	Weight   int    `json:"weight"`
	// ModelRouting holds the per-model overrides of priority and weight.
	ModelRouting map[string]ModelRoutingInfo `json:"model_routing"`
	// SwitchedAt is when the channel was last enabled or disabled (null: never).
	SwitchedAt *time.Time `json:"switched_at"`
}

// ModelRoutingInfo is one model's priority and weight on a channel.
type ModelRoutingInfo struct {
	Priority int `json:"priority"`
	Weight   int `json:"weight"`
}

// channels runs `imagegw channels list|enable NAME|disable NAME`.
func channels(args []string) error {
	sub, posName, rest, err := subcommand("channels", args)
	if err != nil {
		return err
	}
	var jsonOut bool
	var gateway string
	c, fs, err := loadConfig("channels "+sub, rest, func(fs *flag.FlagSet) {
		fs.BoolVar(&jsonOut, "json", false, "print JSON")
		if sub == "list" {
			fs.StringVar(&gateway, "gateway", "", "base `URL` of a running gateway: show its live state of each channel and model from its admin API (admin_token from the configuration)")
		}
	})
	if err != nil {
		return err
	}
	var name string
	switch names := operands(posName, fs); {
	case sub == "list":
		if len(names) > 0 {
			return usageError{fmt.Sprintf("channels list: unexpected argument %q", names[0])}
		}
	case len(names) == 1:
		name = names[0]
	default:
		return usageError{fmt.Sprintf("channels %s: want exactly one channel NAME", sub)}
	}
	if sub == "list" && gateway != "" {
		return liveChannels(c, gateway, jsonOut)
	}
	if name != "" && !slices.ContainsFunc(configuredChannels(c), func(ch config.ChannelConfig) bool { return ch.Name == name }) {
		var names []string
		for _, ch := range configuredChannels(c) {
			names = append(names, ch.Name)
		}
		return usageError{fmt.Sprintf("channels %s: no configured channel %q (configured: %s)", sub, name, strings.Join(names, ", "))}
	}
	ctx := context.Background()
	st, err := app.OpenStore(ctx, c, true)
	if err != nil {
		return err
	}
	defer st.Close()
	if sub != "list" {
		enabled := sub == "enable"
		if err := st.SetChannelEnabled(ctx, name, enabled, time.Now().UTC()); err != nil {
			return err
		}
		if jsonOut {
			infos, err := channelInfos(ctx, c, st)
			if err != nil {
				return err
			}
			for _, in := range infos {
				if in.Name == name {
					return printJSON(in)
				}
			}
		}
		what := "Disabled channel %s: every gateway sharing this store stops sending it traffic within %s.\n"
		if enabled {
			what = "Enabled channel %s: every gateway sharing this store sends it traffic again within %s.\n"
		}
		fmt.Printf(what, name, c.Routing.SwitchPoll.D())
		return nil
	}
	infos, err := channelInfos(ctx, c, st)
	if err != nil {
		return err
	}
	if jsonOut {
		return printJSON(infos)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tENABLED\tPRIORITY\tWEIGHT\tMODEL ROUTING\tSWITCHED")
	for _, in := range infos {
		overrides, switched := "-", "-"
		if len(in.ModelRouting) > 0 {
			var parts []string
			for id, mr := range in.ModelRouting {
				parts = append(parts, fmt.Sprintf("%s (priority %d, weight %d)", id, mr.Priority, mr.Weight))
			}
			sort.Strings(parts)
			overrides = strings.Join(parts, ", ")
		}
		if in.SwitchedAt != nil {
			switched = in.SwitchedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%t\t%d\t%d\t%s\t%s\n", in.Name, in.Type, in.Enabled, in.Priority, in.Weight, overrides, switched)
	}
	return tw.Flush()
}

// configuredChannels are the channels serve builds: the sandbox (when enabled), then the
// configured ones.
func configuredChannels(c *config.Config) []config.ChannelConfig {
	var out []config.ChannelConfig
	if c.Sandbox {
		out = append(out, config.ChannelConfig{Name: "sandbox", Type: "sandbox"})
	}
	return append(out, c.Providers...)
}

// channelInfos joins the configured channels with the store's switches.
func channelInfos(ctx context.Context, c *config.Config, st store.Store) ([]ChannelInfo, error) {
	sw, err := st.ChannelSwitches(ctx)
	if err != nil {
		return nil, err
	}
	byName := map[string]store.ChannelSwitch{}
	for _, s := range sw {
		byName[s.Channel] = s
	}
	var out []ChannelInfo
	for _, ch := range configuredChannels(c) {
		in := ChannelInfo{Name: ch.Name, Type: ch.Type, Enabled: true, Priority: ch.Priority, Weight: 1, ModelRouting: map[string]ModelRoutingInfo{}}
		if ch.Weight != nil {
			in.Weight = *ch.Weight
		}
		for id, mr := range ch.ModelRouting {
			m := ModelRoutingInfo{Priority: in.Priority, Weight: in.Weight}
			if mr.Priority != nil {
				m.Priority = *mr.Priority
			}
			if mr.Weight != nil {
				m.Weight = *mr.Weight
			}
			in.ModelRouting[id] = m
		}
		if s, ok := byName[ch.Name]; ok {
			in.Enabled = s.Enabled
			t := s.UpdatedAt
			in.SwitchedAt = &t
		}
		out = append(out, in)
	}
	return out, nil
}

// liveChannels prints a running gateway's GET /admin/v1/channels.
func liveChannels(c *config.Config, base string, jsonOut bool) error {
	tok := c.AdminToken.Value()
	if tok == "" {
		return fmt.Errorf("channels list --gateway: the configuration has no admin_token (IMAGEGW_ADMIN_TOKEN) to call the admin API with")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/admin/v1/channels", nil)
	if err != nil {
		return fmt.Errorf("channels list --gateway: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("channels list --gateway: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("channels list --gateway: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("channels list --gateway: the gateway answered %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	var list struct {
		Data []router.ChannelView `json:"data"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return fmt.Errorf("channels list --gateway: %w", err)
	}
	if jsonOut {
		return printJSON(list.Data)
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 2, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tMODEL\tSTATE\tPRIORITY\tWEIGHT\tSUCCESS\tCALLS\tP50\tP95\tIN FLIGHT")
	ms := func(p *int64) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatInt(*p, 10) + "ms"
	}
	for _, ch := range list.Data {
		for _, m := range ch.Models {
			rate := "-"
			if m.SuccessRate != nil {
				rate = fmt.Sprintf("%.1f%%", 100**m.SuccessRate)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%s\t%d\t%s\t%s\t%d\n", ch.Name, m.Model, m.State, m.Priority, m.Weight, rate,
				m.Requests, ms(m.LatencyP50MS), ms(m.LatencyP95MS), m.InFlight)
		}
	}
	return tw.Flush()
}
