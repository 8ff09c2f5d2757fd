package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/providers"
)

// Config is the whole configuration.
type Config struct {
	// Addr is the listen address.
	Addr string `yaml:"addr"`
	// PublicURL is the gateway's external base URL (for hosted image links); empty means the
	// request's own scheme and host.
	PublicURL string `yaml:"public_url"`
	// DatabaseURL is "postgres://…", "sqlite:PATH" or empty for SQLite under DataDir. Only its
	// password is redacted when printed.
	DatabaseURL SecretURL `yaml:"database_url"`
	// MigrateOnStart applies embedded migrations when serve starts.
	MigrateOnStart bool `yaml:"migrate_on_start"`
	// RedisURL enables the shared Redis rate limiter; empty means the in-process limiter.
	RedisURL SecretURL `yaml:"redis_url"`
	// ImagesURL is where hosted images live: "file:///dir" (or "file:rel/dir") or
	// "s3://bucket/prefix?endpoint=http://host:port&region=…&presign=true" (internal/imagestore);
	// empty means the directory images.dir. S3 credentials come from AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY (Images.S3), never from the URL.
	ImagesURL SecretURL `yaml:"images_url"`
	// AdminToken enables the admin API (bearer token); empty disables it.
	AdminToken Secret `yaml:"admin_token"`
	// DataDir holds the SQLite database and hosted images by default.
	DataDir string `yaml:"data_dir"`

	Log       LogConfig       `yaml:"log"`
	Limits    LimitsConfig    `yaml:"limits"`
	RateLimit RateLimitConfig `yaml:"rate_limit"`
	Billing   BillingConfig   `yaml:"billing"`
	Images    ImagesConfig    `yaml:"images"`
	Outbound  OutboundConfig  `yaml:"outbound"`
	Store     StoreConfig     `yaml:"store"`
	Routing   RoutingConfig   `yaml:"routing"`

	// Sandbox enables the built-in sandbox provider (default true).
	Sandbox bool `yaml:"sandbox"`
	// Providers are the upstream channels: one entry per provider account.
	Providers []ChannelConfig `yaml:"providers"`
	// Models add aliases, hide and re-price catalog models.
	Models []ModelConfig `yaml:"models"`

	ShutdownTimeout Duration `yaml:"shutdown_timeout"`

	// env maps a setting ("addr", "providers[2].base_url") to the environment variable that set
	// it, so problems name the variable to fix.
	env map[string]string
}

// LogConfig configures zap.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // json or console
	// Access says which requests get an access-log line: all (default), errors (status 400 and
	// above) or off. The access log is never sampled.
	Access string `yaml:"access"`
	// Sample thins repeated log lines other than the access log (per message, the first 100 a
	// second, then 1 in 100). Off by default: every line is kept.
	Sample bool `yaml:"sample"`
}

// LimitsConfig caps what one request may ask for.
type LimitsConfig struct {
	// MaxBodyBytes caps a request body (413 beyond).
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// MaxImagePixels caps an input image's declared width×height, checked before decoding.
	MaxImagePixels int `yaml:"max_image_pixels"`
	// MaxImageBytes caps one fetched or uploaded image.
	MaxImageBytes int64 `yaml:"max_image_bytes"`
	// MaxN caps n per request.
	MaxN int `yaml:"max_n"`
	// MapNearest is the default for nearest-value mapping of sizes (per key overridable).
	MapNearest bool `yaml:"map_nearest"`
	// KeyCacheTTL bounds how long a revoked key keeps working.
	KeyCacheTTL Duration `yaml:"key_cache_ttl"`
	// KeyStaleFor is how long past key_cache_ttl a cached key keeps working while the store
	// fails or times out (0: not at all). Unknown keys are never answered from the cache.
	KeyStaleFor Duration `yaml:"key_stale_for"`
	// MaxInFlight bounds the image API requests one replica serves at once; beyond it they get
	// a fast 503 "overloaded" with Retry-After. 0 means the default (server.DefaultMaxInFlight,
	// 2048, sized from the memory a waiting request holds), negative means unlimited.
	MaxInFlight int `yaml:"max_in_flight"`
	// MaxConnections caps the open client connections of one replica: at the cap a new
	// connection takes the place of the oldest idle, silent or trickling one, or is closed at
	// once when every connection is serving a request. 0 means the default (80 % of the
	// process's open-file limit, RLIMIT_NOFILE; the rest is left for upstream connections, the
	// store, Redis and files), negative means unlimited.
	MaxConnections int `yaml:"max_connections"`
	// BodyMinRate is the slowest a request body may arrive, in bytes per second, once
	// body_read_grace has passed: slower, the request gets a 408 and its connection is closed.
	// 0 means the default (4096), negative means no minimum rate.
	BodyMinRate int64 `yaml:"body_min_rate"`
	// BodyReadGrace is how long a request body may take, from the gateway's first read of it,
	// before body_min_rate applies. 0 means the default (10s).
	BodyReadGrace Duration `yaml:"body_read_grace"`
	// BodyReadTimeout bounds the time a whole request body may take, from the end of the
	// request's headers. 0 means the default (10m), negative means no bound.
	BodyReadTimeout Duration `yaml:"body_read_timeout"`
}

// RateLimitConfig configures the limiter and per-key defaults (0 = unlimited).
type RateLimitConfig struct {
	// FailurePolicy is "open" (fall back to the in-process limiter) or "closed" (503) when Redis fails.
	FailurePolicy string   `yaml:"failure_policy"`
	RedisTimeout  Duration `yaml:"redis_timeout"`
	RPM           int      `yaml:"rpm"`
	IPM           int      `yaml:"ipm"`
	MPPM          int      `yaml:"mppm"`
	Concurrency   int      `yaml:"concurrency"`
	// LeaseTTL is how long a concurrency slot outlives a crashed gateway; live requests renew
	// their leases every third of it.
	LeaseTTL Duration `yaml:"lease_ttl"`
	// AllotWindow turns on admission from allotments (Redis only): a key or channel whose
	// limits are roomy is charged in Redis for about this much of its recent demand at once
	// (never more than 1/16 of a limit) and admitted from it in memory, without a Redis round
	// trip per request. 0 turns it off.
	AllotWindow Duration `yaml:"allot_window"`
}

// BillingConfig sets the deployment currency and conversion rates.
type BillingConfig struct {
	// Currency is the one currency budgets and costs are kept in.
	Currency string `yaml:"currency"`
	// Rates converts prices quoted in other currencies: Rates["CNY"] = "0.14" means 1 CNY = 0.14
	// units of Currency.
	Rates map[string]string `yaml:"rates"`
	// SliceTTL is the lease of a replica's slice of a key's budget: a replica that dies or loses
	// the store stops counting against the budget after it (and stops spending from its slice a
	// tenth of it earlier).
	SliceTTL Duration `yaml:"slice_ttl"`
	// SliceWindow sizes a slice: about this long of the key's recent spend.
	SliceWindow Duration `yaml:"slice_window"`
	// JournalFsync is when a charge is flushed to the disk: before its response (true, the
	// default: it survives a machine crash), within a duration after it, or when the kernel
	// writes it back (false). Every charge survives a crash of the process. See FsyncPolicy.
	JournalFsync FsyncPolicy `yaml:"journal_fsync"`
	// OutboxDir holds the usage journal: every charge is durable there before its response, and
	// waits there while the store is unreachable. One per process.
	OutboxDir string `yaml:"outbox_dir"`
	// Markup makes what keys pay from what providers charge: a catalog price × Markup (a
	// decimal, "1.2" adds 20 %). "" or "1": keys pay the catalog price. A price set in config
	// (models[].price) is the price and is never marked up; models[].markup overrides it per model.
	Markup string `yaml:"markup"`
	// UnpricedWithBudget lets keys with a budget use models without a price (free to them).
	// Off (the default), they are refused with 403: a budget could not bound them.
	UnpricedWithBudget bool `yaml:"unpriced_with_budget"`
	// KeyFreeImages gives every key the models' free images (seed 004's quotas) before it pays.
	// Off (the default), those quotas are the upstream account's: they lower the operator's
	// cost, once per channel, not the keys' price.
	KeyFreeImages bool `yaml:"key_free_images"`
}

// ImagesConfig configures gateway-hosted images (bytes served under an unguessable URL).
type ImagesConfig struct {
	Dir string   `yaml:"dir"`
	TTL Duration `yaml:"ttl"`
	// MaxBytes caps the bytes of hosted images kept per process; writing past it deletes the
	// oldest first. 0 means the default (imagestore.DefaultMaxBytes, 1 GiB), negative means
	// unlimited.
	MaxBytes int64 `yaml:"max_bytes"`
	// RehostProviderURLs is the keep policy for images a provider returns as URLs (which expire,
	// some after an hour): false passes them through to response_format=url clients; true
	// downloads them (through the SSRF-safe client) and hosts them like provider bytes, so the
	// client's URL lives images.ttl.
	RehostProviderURLs bool `yaml:"rehost_provider_urls"`
	// Timeout bounds every wait on the image store: storing an image, a download until the
	// object starts, and any pause in a streamed one (imagestore.Options.Timeout); default 30s.
	Timeout Duration `yaml:"timeout"`
	// S3 holds the object store's credentials, from the environment only.
	S3 S3Credentials `yaml:"-"`
}

// S3Credentials sign requests to an s3:// images_url: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
// and AWS_SESSION_TOKEN. Unset means anonymous requests (a server without authentication).
type S3Credentials struct {
	AccessKeyID     Secret
	SecretAccessKey Secret
	SessionToken    Secret
}

// StoreConfig bounds the gateway's calls to its store.
type StoreConfig struct {
	// Timeout bounds every store call on the request path (key lookups, …): when the store does
	// not answer within it the request fails with 503 and Retry-After, or is served from bounded
	// stale state (cached keys, limits.key_stale_for).
	Timeout Duration `yaml:"timeout"`
}

// RoutingConfig tunes the circuit breaker every channel has per model, and how fast replicas
// follow a channel switched off or on (PATCH /admin/v1/channels/{name}, imagegw channels).
type RoutingConfig struct {
	// Failures is how many failed calls in a row open a channel's breaker for a model.
	Failures int `yaml:"failures"`
	// ErrorRate opens it too when at least this share of the calls of the last Window failed
	// (once MinRequests calls were made in it); 0 turns the rule off.
	ErrorRate   float64  `yaml:"error_rate"`
	MinRequests int      `yaml:"min_requests"`
	Window      Duration `yaml:"window"`
	// Cooldown is how long an open breaker keeps its channel out of rotation before it lets
	// HalfOpenProbes calls through to test it (one success closes it, a failure opens it again).
	Cooldown       Duration `yaml:"cooldown"`
	HalfOpenProbes int      `yaml:"half_open_probes"`
	// SwitchPoll is how often a replica reads the channel switches from the store.
	SwitchPoll Duration `yaml:"switch_poll"`
}

// DefaultRouting is the routing section's default: a breaker opens after 5 failures in a row or
// half the calls of a minute failing (of at least 20), cools down for 30 s, then lets one probe
// through; replicas read the channel switches every 2 s.
var DefaultRouting = RoutingConfig{Failures: 5, ErrorRate: 0.5, MinRequests: 20, Window: Duration(time.Minute),
	Cooldown: Duration(30 * time.Second), HalfOpenProbes: 1, SwitchPoll: Duration(2 * time.Second)}

// OutboundConfig configures the outbound HTTP client.
type OutboundConfig struct {
	Timeout Duration `yaml:"timeout"`
	// AllowHosts may be reached even though private or loopback (host, host:port, IP or CIDR).
	AllowHosts []string `yaml:"allow_hosts"`
}

// ChannelConfig is one upstream account of a provider.
type ChannelConfig struct {
	Name    string            `yaml:"name"`
	Type    string            `yaml:"type"`
	BaseURL string            `yaml:"base_url"`
	APIKey  Secret            `yaml:"api_key"`
	Timeout Duration          `yaml:"timeout"`
	Options map[string]string `yaml:"options"`
	// Models restricts the channel to these upstream model ids (empty: the adapter's catalog).
	Models []string `yaml:"models"`
	// Per-channel limits protecting the upstream account's own quota (0 = unlimited).
	RPM         int `yaml:"rpm"`
	IPM         int `yaml:"ipm"`
	Concurrency int `yaml:"concurrency"`
	// Priority is the channel's routing tier: a model's channels of tier 0 are tried first, then
	// 1, and so on (default 0).
	Priority int `yaml:"priority"`
	// Weight is the channel's share of its tier's traffic (default 1); 0 makes it a standby,
	// tried only after every weighted channel of its tier failed or was skipped.
	Weight *int `yaml:"weight"`
	// ModelRouting overrides priority and weight for some of the channel's upstream model ids.
	ModelRouting map[string]ModelRouting `yaml:"model_routing"`
}

// ModelRouting overrides a channel's priority and weight for one model (unset: the channel's).
type ModelRouting struct {
	Priority *int `yaml:"priority,omitempty"`
	Weight   *int `yaml:"weight,omitempty"`
}

// Bounds of routing settings.
const (
	MaxPriority = 1000
	MaxWeight   = 1000000
)

// ModelConfig adds an alias, hides or re-prices a model.
type ModelConfig struct {
	// Name is the public name (an alias) clients use; empty when only hiding/re-pricing Target.
	Name string `yaml:"name"`
	// Target is what the name routes to: "<channel or provider>/<upstream id>" or a bare id.
	Target string `yaml:"target"`
	// Fallbacks are further targets tried in order when the first fails with a provider fault.
	Fallbacks []string `yaml:"fallbacks"`
	Hidden    bool     `yaml:"hidden"`
	Price     *Price   `yaml:"price"`
	// Markup overrides billing.markup for this model name (Name, else Target).
	Markup string `yaml:"markup"`
	// Strategy orders the model's channels: priority (default: tiers, weighted inside a tier),
	// cheapest (lowest price for the request first) or fastest (lowest recent latency first).
	// It applies to Name, else to Target.
	Strategy string `yaml:"strategy"`
	// Define adds a model the adapter's built-in catalog does not know: Target names the channel
	// (or provider type) and the upstream id ("siliconflow/Qwen/Qwen-Image-2"); Define says what it
	// can do, and Price is required with it.
	Define *ModelDef `yaml:"define"`
}

// ModelDef describes a model added by configuration. Sizes are a list ("1024x1024") or bounds.
type ModelDef struct {
	Description    string   `yaml:"description"`
	Operations     []string `yaml:"operations"` // default [generate]
	Sizes          []string `yaml:"sizes"`
	MinSide        int      `yaml:"min_side"`
	MaxSide        int      `yaml:"max_side"`
	MaxPixels      int      `yaml:"max_pixels"`
	Multiple       int      `yaml:"multiple"`
	AspectRatios   []string `yaml:"aspect_ratios"`
	DefaultSize    string   `yaml:"default_size"`
	MaxN           int      `yaml:"max_n"` // per upstream call; default 1
	MaxInputImages int      `yaml:"max_input_images"`
	Params         []string `yaml:"params"` // negative_prompt, seed, steps, guidance_scale, strength, image, …
	FixedSteps     int      `yaml:"fixed_steps"`
	DefaultSteps   int      `yaml:"default_steps"`
	MaxSteps       int      `yaml:"max_steps"`
	MaxGuidance    float64  `yaml:"max_guidance"`
	SeedMax        int64    `yaml:"seed_max"`
}

// Model builds the providers.Model the definition describes.
func (d *ModelDef) Model(id string, price providers.Price) (providers.Model, error) {
	var errs []error
	m := providers.Model{ID: id, Defined: true, Description: d.Description, MaxN: max(d.MaxN, 1), MaxInputImages: d.MaxInputImages,
		FixedSteps: d.FixedSteps, DefaultSteps: d.DefaultSteps, MaxSteps: d.MaxSteps, MaxGuidance: d.MaxGuidance,
		SeedMax: d.SeedMax, Price: price, Size: providers.SizeRule{MinSide: d.MinSide, MaxSide: d.MaxSide,
			MaxPixels: d.MaxPixels, Multiple: d.Multiple, AspectRatios: d.AspectRatios}}
	if m.MaxSteps > 0 {
		m.MinSteps = 1
	}
	ops := d.Operations
	if len(ops) == 0 {
		ops = []string{string(providers.OpGenerate)}
	}
	for _, op := range ops {
		if !slices.Contains(providers.Operations, providers.Operation(op)) {
			errs = append(errs, fmt.Errorf("operation %q is not one of %v", op, providers.Operations))
		}
		m.Operations = append(m.Operations, providers.Operation(op))
	}
	for _, v := range d.Sizes {
		s, err := providers.ParseSize(v)
		if err != nil {
			errs = append(errs, err)
		}
		m.Size.Sizes = append(m.Size.Sizes, s)
	}
	if d.DefaultSize != "" {
		s, err := providers.ParseSize(d.DefaultSize)
		if err != nil {
			errs = append(errs, err)
		}
		m.Size.Default = s
	}
	p, err := providers.ParseParams(d.Params)
	if err != nil {
		errs = append(errs, err)
	}
	m.Params = p
	if m.SeedMax == 0 && p.Has(providers.ParamSeed) {
		m.SeedMax = 2147483647
	}
	return m, errors.Join(errs...)
}

// Price overrides a model's price.
type Price struct {
	Unit       string      `yaml:"unit"` // image, megapixel_step, megapixel
	Currency   string      `yaml:"currency"`
	Amount     string      `yaml:"amount"`
	FreeImages int         `yaml:"free_images"`
	Tiers      []PriceTier `yaml:"tiers"`
}

// PriceTier is one more specific price.
type PriceTier struct {
	Operation string `yaml:"operation"`
	Quality   string `yaml:"quality"`
	Size      string `yaml:"size"`
	Amount    string `yaml:"amount"`
}

// Duration is a time.Duration that reads "30s", "12h" or "7d" in YAML (see ParseDuration).
type Duration time.Duration

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML reads a duration. A bad one is a *yaml.TypeError, so decoding goes on and the
// file's other problems are reported with it.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*d = Duration(v)
	return nil
}

// maxDays bounds the days of a duration (about 274 years; time.Duration holds 292).
const maxDays = 100000

// ParseDuration reads a duration as Go writes it ("90s", "15m", "12h", "1h30m") or with a
// leading whole number of days ("7d", "30d", "1d12h"). The configuration (file and environment)
// and the imagegw command line take durations through it, the same spellings as
// `imagegw usage --since`.
func ParseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not a duration (like 30s, 15m, 12h or 7d)", s)
	t := strings.TrimSpace(s)
	neg := false
	if rest, ok := strings.CutPrefix(t, "-"); ok {
		neg, t = true, rest
	} else {
		t = strings.TrimPrefix(t, "+")
	}
	var days time.Duration
	if i := strings.IndexByte(t, 'd'); i >= 0 {
		n, err := strconv.Atoi(t[:i])
		if err != nil || n < 0 || n > maxDays || strings.ContainsAny(t[:i], "+-") {
			return 0, bad
		}
		days, t = time.Duration(n)*24*time.Hour, t[i+1:]
		if t == "" {
			if neg {
				return -days, nil
			}
			return days, nil
		}
	}
	if strings.HasPrefix(t, "-") || strings.HasPrefix(t, "+") {
		return 0, bad
	}
	d, err := time.ParseDuration(t)
	if err != nil || d > math.MaxInt64-days {
		return 0, bad
	}
	d += days
	if neg {
		d = -d
	}
	return d, nil
}

// MarshalYAML prints a Go duration string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// Default returns the built-in configuration: everything embedded, nothing to install.
func Default() *Config {
	return &Config{
		Addr:           "127.0.0.1:8080",
		DataDir:        "./data",
		MigrateOnStart: true,
		Log:            LogConfig{Level: "info", Format: "json", Access: "all"},
		Limits: LimitsConfig{
			MaxBodyBytes:   64 << 20,
			MaxImagePixels: 4096 * 4096,
			MaxImageBytes:  25 << 20,
			MaxN:           10,
			KeyCacheTTL:    Duration(5 * time.Second),
			KeyStaleFor:    Duration(10 * time.Minute),
		},
		RateLimit: RateLimitConfig{FailurePolicy: "open", RedisTimeout: Duration(100 * time.Millisecond),
			LeaseTTL: Duration(15 * time.Second), AllotWindow: Duration(250 * time.Millisecond)},
		Billing: BillingConfig{
			Currency:    "USD",
			SliceTTL:    Duration(30 * time.Second),
			SliceWindow: Duration(5 * time.Second),
		},
		Images:          ImagesConfig{TTL: Duration(24 * time.Hour), Timeout: Duration(30 * time.Second)},
		Outbound:        OutboundConfig{Timeout: Duration(120 * time.Second)},
		Store:           StoreConfig{Timeout: Duration(2 * time.Second)},
		Routing:         DefaultRouting,
		Sandbox:         true,
		ShutdownTimeout: Duration(30 * time.Second),
	}
}

// Load reads the YAML file at path (none when empty) over the defaults, applies environment
// overrides from getenv, fills derived defaults and validates. All problems come back at once,
// as an *Error: those of the file, of the environment and of the values they make.
func Load(path string, getenv func(string) string) (*Config, error) {
	return LoadChecked(path, getenv, nil)
}

// LoadChecked is Load with a further check of the loaded configuration (imagegw builds the
// model catalog with it, as serve does): its problems are reported with the file's and the
// environment's. check runs whenever the file could be read and parsed, even when other problems
// were found, so one run reports everything; its problems that repeat one already found are
// dropped.
func LoadChecked(path string, getenv func(string) string, check func(*Config) error) (*Config, error) {
	c := Default()
	e := &Error{File: path}
	parsed := true
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("config: %w", err)
		}
		var te *yaml.TypeError
		switch err := c.decode(b); {
		case errors.As(err, &te):
			// Values of the wrong type or unknown fields: the rest of the file was read.
			for _, m := range te.Errors {
				e.add(errors.New(typeError(m)))
			}
		case err != nil:
			// A syntax error: the file's values are unknown, so only the environment is checked.
			e.add(errors.New(strings.TrimPrefix(err.Error(), "yaml: ")))
			parsed = false
		}
	}
	e.add(c.applyEnv(getenv))
	c.fill()
	if parsed {
		e.add(c.Validate())
		if check != nil {
			e.add(check(c))
		}
	}
	if len(e.Problems) > 0 {
		return nil, e
	}
	return c, nil
}

// Error is every problem found in a configuration.
type Error struct {
	// File is the configuration file ("" when there is none).
	File string
	// Problems are one error per problem, each naming the setting (or environment variable) at
	// fault.
	Problems []error
}

// Error lists the problems, one a line after the first.
func (e *Error) Error() string {
	head := "configuration"
	if e.File != "" {
		head = "configuration " + e.File
	}
	if len(e.Problems) == 1 {
		return head + ": " + e.Problems[0].Error()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d problems:", head, len(e.Problems))
	for _, p := range e.Problems {
		b.WriteString("\n  - ")
		b.WriteString(p.Error())
	}
	return b.String()
}

// Unwrap returns the problems.
func (e *Error) Unwrap() []error { return e.Problems }

// add appends err's problems (each of a joined error, or of a nested *Error), skipping those
// already listed.
func (e *Error) add(err error) {
	if err == nil {
		return
	}
	var inner *Error
	if errors.As(err, &inner) && inner != e {
		for _, p := range inner.Problems {
			e.add(p)
		}
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, p := range j.Unwrap() {
			e.add(p)
		}
		return
	}
	for _, p := range e.Problems {
		if p.Error() == err.Error() {
			return
		}
	}
	e.Problems = append(e.Problems, err)
}

var unknownFieldRE = regexp.MustCompile(`^(line \d+): field (\S+) not found in type \S+$`)

// typeError rewords a yaml.v3 type error for an operator: "line 3: field listen not found in
// type config.Config" becomes "line 3: unknown setting \"listen\"".
func typeError(m string) string {
	if s := unknownFieldRE.FindStringSubmatch(m); s != nil {
		return fmt.Sprintf("%s: unknown setting %q", s[1], s[2])
	}
	return m
}

func (c *Config) decode(b []byte) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// from names a setting for a problem: "addr", or "IMAGEGW_ADDR (addr)" when the environment set it.
func (c *Config) from(key string) string {
	if v := c.env[key]; v != "" {
		return v + " (" + key + ")"
	}
	return key
}

// setByEnv records that the environment variable name set key.
func (c *Config) setByEnv(key, name string) {
	if c.env == nil {
		c.env = map[string]string{}
	}
	c.env[key] = name
}

// envName turns a provider type into its env prefix: "openai-compatible" → "OPENAI_COMPATIBLE".
func envName(t string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(t))
}

// applyEnv applies the environment over the file. Every bad variable is reported, and the
// settings it makes are remembered so that Validate names the variable at fault.
func (c *Config) applyEnv(getenv func(string) string) error {
	var errs []error
	str := func(name, key string, dst *string) {
		if v := getenv(name); v != "" {
			*dst = v
			c.setByEnv(key, name)
		}
	}
	sec := func(name, key string, dst *Secret) {
		if v := getenv(name); v != "" {
			*dst = Secret(v)
			c.setByEnv(key, name)
		}
	}
	secURL := func(name, key string, dst *SecretURL) {
		if v := getenv(name); v != "" {
			*dst = SecretURL(v)
			c.setByEnv(key, name)
		}
	}
	duration := func(name, key string, dst *Duration) {
		if v := getenv(name); v != "" {
			d, err := ParseDuration(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %v", name, err))
				return
			}
			*dst = Duration(d)
			c.setByEnv(key, name)
		}
	}
	integer := func(name, key string, dst *int64) {
		if v := getenv(name); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not an integer", name, v))
				return
			}
			*dst = n
			c.setByEnv(key, name)
		}
	}
	boolean := func(name string, dst *bool) {
		if v := getenv(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s: %q is not a boolean (true or false)", name, v))
				return
			}
			*dst = b
		}
	}
	str("IMAGEGW_ADDR", "addr", &c.Addr)
	str("IMAGEGW_PUBLIC_URL", "public_url", &c.PublicURL)
	secURL("IMAGEGW_DATABASE_URL", "database_url", &c.DatabaseURL)
	secURL("IMAGEGW_REDIS_URL", "redis_url", &c.RedisURL)
	secURL("IMAGEGW_IMAGES_URL", "images_url", &c.ImagesURL)
	boolean("IMAGEGW_REHOST_PROVIDER_URLS", &c.Images.RehostProviderURLs)
	sec("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID", &c.Images.S3.AccessKeyID)
	sec("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", &c.Images.S3.SecretAccessKey)
	sec("AWS_SESSION_TOKEN", "AWS_SESSION_TOKEN", &c.Images.S3.SessionToken)
	sec("IMAGEGW_ADMIN_TOKEN", "admin_token", &c.AdminToken)
	str("IMAGEGW_DATA_DIR", "data_dir", &c.DataDir)
	str("IMAGEGW_LOG_LEVEL", "log.level", &c.Log.Level)
	str("IMAGEGW_LOG_FORMAT", "log.format", &c.Log.Format)
	str("IMAGEGW_LOG_ACCESS", "log.access", &c.Log.Access)
	boolean("IMAGEGW_LOG_SAMPLE", &c.Log.Sample)
	str("IMAGEGW_CURRENCY", "billing.currency", &c.Billing.Currency)
	str("IMAGEGW_RATE_LIMIT_FAILURE_POLICY", "rate_limit.failure_policy", &c.RateLimit.FailurePolicy)
	boolean("IMAGEGW_SANDBOX", &c.Sandbox)
	boolean("IMAGEGW_MIGRATE_ON_START", &c.MigrateOnStart)
	boolean("IMAGEGW_MAP_NEAREST", &c.Limits.MapNearest)
	if v := getenv("IMAGEGW_JOURNAL_FSYNC"); v != "" {
		if p, err := ParseFsyncPolicy(v); err != nil {
			errs = append(errs, fmt.Errorf("IMAGEGW_JOURNAL_FSYNC: %v", err))
		} else {
			c.Billing.JournalFsync = p
		}
	}
	boolean("IMAGEGW_UNPRICED_WITH_BUDGET", &c.Billing.UnpricedWithBudget)
	str("IMAGEGW_MARKUP", "billing.markup", &c.Billing.Markup)
	boolean("IMAGEGW_KEY_FREE_IMAGES", &c.Billing.KeyFreeImages)
	duration("IMAGEGW_STORE_TIMEOUT", "store.timeout", &c.Store.Timeout)
	duration("IMAGEGW_KEY_STALE_FOR", "limits.key_stale_for", &c.Limits.KeyStaleFor)
	maxConns := int64(c.Limits.MaxConnections)
	integer("IMAGEGW_MAX_CONNECTIONS", "limits.max_connections", &maxConns)
	if maxConns < math.MinInt32 || maxConns > math.MaxInt32 {
		errs = append(errs, fmt.Errorf("IMAGEGW_MAX_CONNECTIONS: %d is out of range", maxConns))
	} else {
		c.Limits.MaxConnections = int(maxConns)
	}
	integer("IMAGEGW_BODY_MIN_RATE", "limits.body_min_rate", &c.Limits.BodyMinRate)
	duration("IMAGEGW_BODY_READ_GRACE", "limits.body_read_grace", &c.Limits.BodyReadGrace)
	duration("IMAGEGW_BODY_READ_TIMEOUT", "limits.body_read_timeout", &c.Limits.BodyReadTimeout)
	if v := getenv("IMAGEGW_OUTBOUND_ALLOW_HOSTS"); v != "" {
		for _, h := range strings.Split(v, ",") {
			if h = strings.TrimSpace(h); h != "" && !slices.Contains(c.Outbound.AllowHosts, h) {
				c.Outbound.AllowHosts = append(c.Outbound.AllowHosts, h)
			}
		}
	}
	// A provider's channel from env: <TYPE>_API_KEY (and <TYPE>_BASE_URL) for every registered
	// type that has no configured channel of the same name.
	for _, t := range providers.Names() {
		if t == "sandbox" {
			continue
		}
		keyVar, baseVar := envName(t)+"_API_KEY", envName(t)+"_BASE_URL"
		key, base := getenv(keyVar), getenv(baseVar)
		if key == "" {
			continue
		}
		i := slices.IndexFunc(c.Providers, func(ch ChannelConfig) bool { return ch.Name == t })
		if i < 0 {
			i = len(c.Providers)
			c.Providers = append(c.Providers, ChannelConfig{Name: t, Type: t})
			c.setByEnv(fmt.Sprintf("providers[%d]", i), keyVar)
		}
		c.Providers[i].APIKey = Secret(key)
		if base != "" {
			c.Providers[i].BaseURL = base
			c.setByEnv(fmt.Sprintf("providers[%d].base_url", i), baseVar)
		}
	}
	return errors.Join(errs...)
}

func (c *Config) fill() {
	for i := range c.Providers {
		if c.Providers[i].Name == "" {
			c.Providers[i].Name = c.Providers[i].Type
		}
		if c.Providers[i].Weight == nil {
			w := 1
			c.Providers[i].Weight = &w
		}
	}
	if c.Images.Dir == "" {
		c.Images.Dir = c.DataDir + "/images"
	}
	if c.Billing.OutboxDir == "" {
		c.Billing.OutboxDir = c.DataDir + "/outbox"
	}
	c.Billing.Currency = strings.ToUpper(c.Billing.Currency)
	if c.Billing.Rates == nil {
		c.Billing.Rates = DefaultRates[c.Billing.Currency]
	}
}

// DefaultRates are the conversion rates used when the configuration sets none, per deployment
// currency: the built-in catalogs quote in USD and CNY. They are round placeholders, not market
// rates; set billing.rates for real billing.
var DefaultRates = map[string]map[string]string{
	"USD": {"CNY": "0.14"},
	"CNY": {"USD": "7.2"},
}

// Bounds of the connection and request-body limits.
const (
	// MinMaxConnections is the smallest positive limits.max_connections.
	MinMaxConnections = 16
	// MaxBodyMinRate is the largest limits.body_min_rate (1 GiB/s).
	MaxBodyMinRate = 1 << 30
)

var (
	nameRE     = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]*$`)
	currencyRE = regexp.MustCompile(`^[A-Z]{3}$`)
)

// Validate reports every problem in the configuration at once.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("%s: %q is not host:port", c.from("addr"), c.Addr)
	}
	if c.PublicURL != "" {
		if u, err := url.Parse(c.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("%s: %q is not an absolute http(s) URL", c.from("public_url"), c.PublicURL)
		}
	}
	if d := c.DatabaseURL.Value(); d != "" && !strings.HasPrefix(d, "postgres://") && !strings.HasPrefix(d, "postgresql://") &&
		!strings.HasPrefix(d, "sqlite:") && !strings.HasPrefix(d, "file:") {
		bad("%s: must start with postgres://, postgresql:// or sqlite:", c.from("database_url"))
	}
	if r := c.RedisURL.Value(); r != "" && !strings.HasPrefix(r, "redis://") && !strings.HasPrefix(r, "rediss://") {
		bad("%s: must start with redis:// or rediss://", c.from("redis_url"))
	}
	if u := c.ImagesURL.Value(); u != "" {
		// internal/imagestore checks the rest when it opens the store.
		if !strings.HasPrefix(u, "file:") && !strings.HasPrefix(u, "s3://") {
			bad("%s: must start with file: (a directory) or s3:// (a bucket)", c.from("images_url"))
		} else if strings.HasPrefix(u, "s3://") {
			if pu, err := url.Parse(u); err != nil || pu.Host == "" || pu.User != nil {
				bad("%s: want s3://bucket/prefix?endpoint=…, without credentials (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)", c.from("images_url"))
			}
		}
	}
	if s3 := c.Images.S3; strings.HasPrefix(c.ImagesURL.Value(), "s3://") && (s3.AccessKeyID == "") != (s3.SecretAccessKey == "") {
		bad("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY: set both or neither")
	}
	if !slices.Contains([]string{"debug", "info", "warn", "error"}, c.Log.Level) {
		bad("%s: %q is not one of debug, info, warn, error", c.from("log.level"), c.Log.Level)
	}
	if c.Log.Format != "json" && c.Log.Format != "console" {
		bad("%s: %q is not json or console", c.from("log.format"), c.Log.Format)
	}
	if !slices.Contains([]string{"all", "errors", "off"}, c.Log.Access) {
		bad("%s: %q is not one of all, errors, off", c.from("log.access"), c.Log.Access)
	}
	if c.Limits.MaxBodyBytes <= 0 || c.Limits.MaxImagePixels <= 0 || c.Limits.MaxImageBytes <= 0 {
		bad("limits: max_body_bytes, max_image_pixels and max_image_bytes must be positive")
	}
	if c.Limits.MaxN < 1 || c.Limits.MaxN > 100 {
		bad("limits.max_n: %d is not within 1..100", c.Limits.MaxN)
	}
	if c.Limits.KeyStaleFor < 0 {
		bad("%s: %v must not be negative", c.from("limits.key_stale_for"), c.Limits.KeyStaleFor.D())
	}
	if n := c.Limits.MaxConnections; n > 0 && n < MinMaxConnections {
		bad("%s: %d is below %d (0: 80%% of the open-file limit, negative: unlimited)", c.from("limits.max_connections"), n, MinMaxConnections)
	}
	if r := c.Limits.BodyMinRate; r > MaxBodyMinRate {
		bad("%s: %d bytes/s is above %d: it would cut every client (0: the default, negative: no minimum)", c.from("limits.body_min_rate"), r, int64(MaxBodyMinRate))
	}
	grace, timeout := c.Limits.BodyReadGrace.D(), c.Limits.BodyReadTimeout.D()
	if grace < 0 {
		bad("%s: %v must not be negative (0: the default, 10s)", c.from("limits.body_read_grace"), grace)
	} else if grace > 0 && grace < 100*time.Millisecond {
		bad("%s: %v is below 100ms", c.from("limits.body_read_grace"), grace)
	}
	if timeout > 0 && timeout < time.Second {
		bad("%s: %v is below 1s (0: the default, 10m; negative: no bound)", c.from("limits.body_read_timeout"), timeout)
	}
	if grace > 0 && timeout > 0 && grace > timeout {
		bad("%s: %v is longer than limits.body_read_timeout (%v)", c.from("limits.body_read_grace"), grace, timeout)
	}
	if c.Billing.SliceTTL.D() < time.Second {
		bad("billing.slice_ttl: %v must be at least 1s", c.Billing.SliceTTL.D())
	}
	if c.Billing.SliceWindow <= 0 {
		bad("billing.slice_window: %v must be positive", c.Billing.SliceWindow.D())
	}
	if c.Store.Timeout <= 0 {
		bad("%s: %v must be positive", c.from("store.timeout"), c.Store.Timeout.D())
	}
	if c.RateLimit.FailurePolicy != "open" && c.RateLimit.FailurePolicy != "closed" {
		bad("%s: %q is not open or closed", c.from("rate_limit.failure_policy"), c.RateLimit.FailurePolicy)
	}
	if c.RateLimit.RPM < 0 || c.RateLimit.IPM < 0 || c.RateLimit.MPPM < 0 || c.RateLimit.Concurrency < 0 {
		bad("rate_limit: limits must not be negative")
	}
	if c.RateLimit.AllotWindow < 0 {
		bad("%s: %v must not be negative (0 turns allotments off)", c.from("rate_limit.allot_window"), c.RateLimit.AllotWindow.D())
	}
	if c.RateLimit.LeaseTTL.D() < time.Second {
		bad("rate_limit.lease_ttl: %v is below 1s", c.RateLimit.LeaseTTL.D())
	}
	if !currencyRE.MatchString(c.Billing.Currency) {
		bad("%s: %q is not a 3-letter currency code", c.from("billing.currency"), c.Billing.Currency)
	}
	for cur, r := range c.Billing.Rates {
		if a, err := money.Parse(r); err != nil || a <= 0 {
			bad("billing.rates.%s: %q is not a positive decimal", cur, r)
		}
	}
	seen := map[string]bool{}
	for i, ch := range c.Providers {
		where := fmt.Sprintf("providers[%d]", i)
		switch v := c.env[where]; {
		case v != "":
			where = fmt.Sprintf("%s (channel %s)", v, ch.Name)
		case ch.Name != "":
			where = fmt.Sprintf("providers[%d] (%s)", i, ch.Name)
		}
		switch {
		case ch.Type == "":
			bad("%s: type is required (one of %v)", where, providers.Names())
		case !providers.Registered(ch.Type):
			bad("%s: unknown provider %q (known: %v)", where, ch.Type, providers.Names())
		}
		if !nameRE.MatchString(ch.Name) {
			bad("%s: name %q must be letters, digits, '.', '_' or '-'", where, ch.Name)
		}
		if seen[ch.Name] {
			bad("%s: duplicate channel name %q", where, ch.Name)
		}
		seen[ch.Name] = true
		if ch.BaseURL != "" {
			if u, err := url.Parse(ch.BaseURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				if v := c.env[fmt.Sprintf("providers[%d].base_url", i)]; v != "" {
					bad("%s: %q is not an absolute http(s) URL", v, RedactURL(ch.BaseURL))
				} else {
					bad("%s: base_url is not an absolute http(s) URL", where)
				}
			}
		}
		if ch.Type != "sandbox" && ch.APIKey == "" {
			bad("%s: api_key is required (or set %s_API_KEY)", where, envName(ch.Type))
		}
		if ch.RPM < 0 || ch.IPM < 0 || ch.Concurrency < 0 {
			bad("%s: limits must not be negative", where)
		}
		badRouting := func(at string, p, w *int) {
			if p != nil && (*p < 0 || *p > MaxPriority) {
				bad("%s: %spriority %d is not within 0..%d (0 is tried first)", where, at, *p, MaxPriority)
			}
			if w != nil && (*w < 0 || *w > MaxWeight) {
				bad("%s: %sweight %d is not within 0..%d (0: standby)", where, at, *w, MaxWeight)
			}
		}
		badRouting("", &ch.Priority, ch.Weight)
		ids := make([]string, 0, len(ch.ModelRouting))
		for id := range ch.ModelRouting {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			if id == "" {
				bad("%s: model_routing: a model id is empty", where)
			}
			mr := ch.ModelRouting[id]
			badRouting(fmt.Sprintf("model_routing[%s].", id), mr.Priority, mr.Weight)
		}
	}
	if r := c.Routing; r.Failures < 1 || r.MinRequests < 1 || r.HalfOpenProbes < 1 {
		bad("routing: failures, min_requests and half_open_probes must be at least 1")
	}
	if r := c.Routing.ErrorRate; r < 0 || r > 1 || r != r {
		bad("routing.error_rate: %v is not within 0..1 (0 turns the rule off)", r)
	}
	for _, d := range []struct {
		name string
		v    Duration
		min  time.Duration
	}{{"routing.window", c.Routing.Window, time.Second}, {"routing.cooldown", c.Routing.Cooldown, time.Second},
		{"routing.switch_poll", c.Routing.SwitchPoll, 100 * time.Millisecond}} {
		if d.v.D() < d.min {
			bad("%s: %v is below %v", d.name, d.v.D(), d.min)
		}
	}
	for i, m := range c.Models {
		where := fmt.Sprintf("models[%d]", i)
		if m.Target == "" {
			bad("%s: target is required", where)
		}
		if m.Name == "" && !m.Hidden && m.Price == nil && m.Strategy == "" {
			bad("%s: give a name (alias), hidden: true, a price or a strategy", where)
		}
		if m.Strategy != "" && !slices.Contains([]string{"priority", "cheapest", "fastest"}, m.Strategy) {
			bad("%s.strategy: %q is not priority, cheapest or fastest", where, m.Strategy)
		}
		if m.Price != nil {
			if _, err := m.Price.Parse(); err != nil {
				bad("%s.price: %v", where, err)
			}
		}
		if m.Define != nil {
			chName, id, ok := strings.Cut(m.Target, "/")
			if !ok || chName == "" || id == "" {
				bad("%s: a defined model's target is <channel or provider>/<upstream id>", where)
			}
			if m.Price == nil {
				bad("%s: a defined model needs a price", where)
			}
			if _, err := m.Define.Model(id, providers.Price{}); err != nil {
				bad("%s.define: %v", where, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Parse converts a configured price into a providers.Price.
func (p *Price) Parse() (providers.Price, error) {
	var errs []error
	out := providers.Price{Unit: providers.PriceUnit(p.Unit), Currency: strings.ToUpper(p.Currency), FreeImages: p.FreeImages}
	switch out.Unit {
	case providers.PerImage, providers.PerMegapixelStep, providers.PerMegapixel:
	default:
		errs = append(errs, fmt.Errorf("unit %q is not image, megapixel_step or megapixel", p.Unit))
	}
	if !currencyRE.MatchString(out.Currency) {
		errs = append(errs, fmt.Errorf("currency %q is not a 3-letter currency code", p.Currency))
	}
	a, err := money.Parse(p.Amount)
	if err != nil || a < 0 {
		errs = append(errs, fmt.Errorf("amount %q is not a non-negative decimal", p.Amount))
	}
	out.Amount = a
	if p.FreeImages < 0 {
		errs = append(errs, errors.New("free_images must not be negative"))
	}
	for i, t := range p.Tiers {
		ta, err := money.Parse(t.Amount)
		if err != nil || ta < 0 {
			errs = append(errs, fmt.Errorf("tiers[%d].amount %q is not a non-negative decimal", i, t.Amount))
		}
		out.Tiers = append(out.Tiers, providers.PriceTier{Operation: providers.Operation(t.Operation), Quality: t.Quality, Size: t.Size, Amount: ta})
	}
	return out, errors.Join(errs...)
}

// Redacted returns the configuration as YAML with every secret redacted, for `imagegw config`
// and start-up logs.
func (c *Config) Redacted() string {
	b, err := yaml.Marshal(c)
	if err != nil {
		return fmt.Sprintf("config: %v", err)
	}
	return string(b)
}
