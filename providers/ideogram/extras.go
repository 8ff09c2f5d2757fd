package ideogram

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/imagegw/imagegw/providers"
)

// api says which of Ideogram's two API generations serves a model.
type api int

const (
	apiLegacy api = iota // /generate, /remix, /edit, /reframe with image_request or flat fields
	apiV3                // /v1/ideogram-v3/...
)

func apiOf(model string) api {
	if model == ModelV3 {
		return apiV3
	}
	return apiLegacy
}

// opExtras lists which extension fields each operation carries on the wire, per API generation.
// Upscale and describe are the same endpoints for every model.
var opExtras = map[api]map[providers.Operation][]string{
	apiLegacy: {
		providers.OpGenerate:  {ExtraMagicPrompt, ExtraStyleType, ExtraAspectRatio, ExtraResolution, ExtraColorPalette},
		providers.OpRemix:     {ExtraMagicPrompt, ExtraStyleType, ExtraAspectRatio, ExtraResolution, ExtraColorPalette, ExtraImageWeight},
		providers.OpVariation: {ExtraMagicPrompt, ExtraStyleType, ExtraAspectRatio, ExtraResolution, ExtraColorPalette, ExtraImageWeight},
		providers.OpEdit:      {ExtraMagicPrompt, ExtraStyleType, ExtraMaskFormat},
		providers.OpReframe:   {ExtraStyleType, ExtraResolution},
		providers.OpUpscale:   {ExtraMagicPrompt, ExtraResemblance, ExtraDetail},
		providers.OpDescribe:  {ExtraDescribeModelVersion},
	},
	apiV3: {
		providers.OpGenerate: {ExtraRenderingSpeed, ExtraMagicPrompt, ExtraStyleType, ExtraAspectRatio, ExtraResolution,
			ExtraColorPalette, ExtraStyleCodes, ExtraStylePreset, ExtraStyleReferenceImages},
		providers.OpRemix: {ExtraRenderingSpeed, ExtraMagicPrompt, ExtraStyleType, ExtraAspectRatio, ExtraResolution,
			ExtraColorPalette, ExtraStyleCodes, ExtraStylePreset, ExtraImageWeight, ExtraStyleReferenceImages},
		providers.OpVariation: {ExtraRenderingSpeed, ExtraMagicPrompt, ExtraStyleType, ExtraAspectRatio, ExtraResolution,
			ExtraColorPalette, ExtraStyleCodes, ExtraStylePreset, ExtraImageWeight, ExtraStyleReferenceImages},
		providers.OpEdit: {ExtraRenderingSpeed, ExtraMagicPrompt, ExtraStyleType, ExtraStylePreset, ExtraColorPalette,
			ExtraStyleCodes, ExtraMaskFormat, ExtraStyleReferenceImages},
		providers.OpReframe: {ExtraRenderingSpeed, ExtraResolution, ExtraStylePreset, ExtraColorPalette, ExtraStyleCodes,
			ExtraStyleReferenceImages},
		providers.OpReplaceBackground: {ExtraRenderingSpeed, ExtraMagicPrompt, ExtraStylePreset, ExtraColorPalette,
			ExtraStyleCodes, ExtraStyleReferenceImages},
		providers.OpUpscale:  {ExtraMagicPrompt, ExtraResemblance, ExtraDetail},
		providers.OpDescribe: {ExtraDescribeModelVersion},
	},
}

// knobs are a request's Ideogram settings after validation: every value is in its wire vocabulary
// (except sizes and ratios, which the wire functions spell per API generation).
type knobs struct {
	speed           string // TURBO / DEFAULT / QUALITY, "" = upstream default
	magic           string // AUTO / ON / OFF
	styleType       string
	aspect          string         // canonical "W:H"
	size            providers.Size // resolution; zero = none
	palette         json.RawMessage
	imageWeight     *int
	resemblance     *int
	detail          *int
	styleCodes      []string
	stylePreset     string
	describeVersion string
	maskFormat      string // "alpha" (OpenAI convention, default) or "bw"
	styleRefCount   *int   // declared number of trailing style reference images
	styleRefs       []providers.Image
}

var (
	hexColor  = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)
	styleCode = regexp.MustCompile(`^[0-9a-fA-F]{8}$`)
)

func unsupported(param, format string, args ...any) *providers.Error {
	e := providers.UnsupportedParam(param, format, args...)
	e.Provider = Name
	return e
}

func invalid(param, format string, args ...any) *providers.Error {
	e := providers.ParamError(param, format, args...)
	e.Provider = Name
	return e
}

// parseKnobs validates req's extension fields against the model and operation, merges the canonical
// fields that map onto them (quality → rendering_speed, prompt_enhancement → magic_prompt,
// aspect_ratio, width/height → resolution) and refuses conflicts.
func parseKnobs(m *providers.Model, op providers.Operation, req *providers.Request) (knobs, error) {
	var k knobs
	gen := apiOf(m.ID)
	allowed := opExtras[gen][op]
	keys := make([]string, 0, len(req.Extra))
	for key := range req.Extra {
		keys = append(keys, key)
	}
	sort.Strings(keys)
	for _, key := range keys {
		raw := req.Extra[key]
		if key == "" {
			return k, invalid("extra", "an extension field has an empty name")
		}
		if !slices.Contains(m.Extras, key) {
			return k, unsupported(key, "%s is not supported by Ideogram model %s", key, m.ID)
		}
		if !slices.Contains(allowed, key) {
			return k, unsupported(key, "%s is not supported by the Ideogram %s operation", key, op)
		}
		if isNull(raw) {
			continue
		}
		var err error
		switch key {
		case ExtraRenderingSpeed:
			k.speed, err = enumValue(key, raw, renderingSpeeds)
		case ExtraMagicPrompt:
			k.magic, err = magicValue(raw)
		case ExtraStyleType:
			list := legacyStyleTypes
			if gen == apiV3 {
				list = v3StyleTypes
			}
			k.styleType, err = enumValue(key, raw, list)
		case ExtraAspectRatio:
			k.aspect, err = aspectValue(raw, ratiosFor(gen))
		case ExtraResolution:
			k.size, err = resolutionValue(raw)
		case ExtraColorPalette:
			k.palette, err = paletteValue(raw)
		case ExtraImageWeight:
			k.imageWeight, err = rangeValue(key, raw, 1, 100)
		case ExtraResemblance:
			k.resemblance, err = rangeValue(key, raw, 1, 100)
		case ExtraDetail:
			k.detail, err = rangeValue(key, raw, 1, 100)
		case ExtraStyleCodes:
			k.styleCodes, err = styleCodesValue(raw)
		case ExtraStylePreset:
			k.stylePreset, err = enumValue(key, raw, v3StylePresets)
		case ExtraDescribeModelVersion:
			k.describeVersion, err = enumValue(key, raw, describeModelVersions)
		case ExtraStyleReferenceImages:
			k.styleRefCount, err = rangeValue(key, raw, 0, len(req.Images))
		case ExtraMaskFormat:
			var s string
			s, err = stringValue(key, raw)
			s = strings.ToLower(s)
			if err == nil && s != "alpha" && s != "bw" {
				err = invalid(key, `mask_format must be "alpha" (transparent = change, the OpenAI convention) or "bw" (black = change)`)
			}
			k.maskFormat = s
		default:
			return k, unsupported(key, "%s is not supported by Ideogram", key)
		}
		if err != nil {
			return k, err
		}
	}

	// quality → rendering_speed.
	if q := strings.ToLower(req.Quality); q != "" && q != "auto" {
		if gen != apiV3 || !slices.Contains(allowed, ExtraRenderingSpeed) {
			return k, unsupported("quality", "quality is not supported by Ideogram model %s for the %s operation", m.ID, op)
		}
		speed, ok := map[string]string{"low": SpeedTurbo, "medium": SpeedDefault, "high": SpeedQuality}[q]
		if !ok {
			return k, invalid("quality", "quality must be low, medium or high (rendering speed TURBO, DEFAULT or QUALITY)")
		}
		if k.speed != "" && k.speed != speed {
			return k, invalid("quality", "quality %s (rendering speed %s) conflicts with rendering_speed %s", q, speed, k.speed)
		}
		k.speed = speed
	}
	// prompt_enhancement → magic_prompt.
	if req.PromptEnhancement != nil {
		if !slices.Contains(allowed, ExtraMagicPrompt) {
			return k, unsupported("prompt_enhancement", "prompt_enhancement is not supported by the Ideogram %s operation", op)
		}
		v := "OFF"
		if *req.PromptEnhancement {
			v = "ON"
		}
		if k.magic != "" && k.magic != v {
			return k, invalid("prompt_enhancement", "prompt_enhancement conflicts with magic_prompt %s", k.magic)
		}
		k.magic = v
	}
	// The canonical aspect ratio.
	if req.AspectRatio != "" {
		if !slices.Contains(allowed, ExtraAspectRatio) {
			return k, unsupported("aspect_ratio", "aspect_ratio is not supported by the Ideogram %s operation", op)
		}
		a, err := aspectValue(mustJSON(req.AspectRatio), ratiosFor(gen))
		if err != nil {
			return k, err
		}
		if k.aspect != "" && k.aspect != a {
			return k, invalid("aspect_ratio", "aspect_ratio %s conflicts with the extension field aspect_ratio %s", a, k.aspect)
		}
		k.aspect = a
	}
	if k.aspect != "" && !slices.Contains(m.Size.AspectRatios, k.aspect) {
		return k, invalid("aspect_ratio", "aspect ratio %s is not supported by Ideogram model %s", k.aspect, m.ID)
	}
	// The canonical size.
	if req.Width != 0 || req.Height != 0 {
		s := providers.Size{W: req.Width, H: req.Height}
		switch op {
		case providers.OpEdit, providers.OpReplaceBackground:
			// The output has the source image's size; a size equal to it asks for nothing else.
			if len(req.Images) > 0 && req.Images[0].Width == s.W && req.Images[0].Height == s.H {
				break
			}
			return k, unsupported("size", "the Ideogram %s operation keeps the source image's size; size cannot be set", op)
		default:
			if !slices.Contains(allowed, ExtraResolution) {
				return k, unsupported("size", "size is not supported by the Ideogram %s operation", op)
			}
			if !slices.Contains(m.Extras, ExtraResolution) {
				return k, unsupported("size", "Ideogram model %s takes aspect ratios only, not sizes", m.ID)
			}
			if !k.size.IsZero() && k.size != s {
				return k, invalid("size", "size %s conflicts with resolution %s", s, k.size)
			}
			k.size = s
		}
	}
	if !k.size.IsZero() && !slices.Contains(resolutionsFor(gen), k.size.String()) {
		return k, invalid("size", "size %s is not one of Ideogram %s's resolutions", k.size, m.ID)
	}
	if !k.size.IsZero() && k.aspect != "" {
		return k, invalid("aspect_ratio", "give either a size or an aspect ratio, not both")
	}
	if len(k.styleCodes) > 0 && k.styleType != "" {
		return k, invalid(ExtraStyleCodes, "style_codes cannot be combined with style_type")
	}
	return k, nil
}

func ratiosFor(gen api) []string {
	if gen == apiV3 {
		return v3AspectRatios
	}
	return legacyAspectRatios
}

func resolutionsFor(gen api) []string {
	if gen == apiV3 {
		return v3Resolutions
	}
	return legacyResolutions
}

func isNull(raw json.RawMessage) bool {
	return len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

func mustJSON(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// stringValue reads a JSON string.
func stringValue(key string, raw json.RawMessage) (string, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", invalid(key, "%s must be a string", key)
	}
	return strings.TrimSpace(s), nil
}

// enumValue reads a JSON string and checks it against allowed, case-insensitively.
func enumValue(key string, raw json.RawMessage, allowed []string) (string, error) {
	s, err := stringValue(key, raw)
	if err != nil {
		return "", err
	}
	u := strings.ToUpper(s)
	if !slices.Contains(allowed, u) {
		if len(allowed) > 12 {
			return "", invalid(key, "%s %q is not one of Ideogram's values", key, s)
		}
		return "", invalid(key, "%s must be one of %s", key, strings.Join(allowed, ", "))
	}
	return u, nil
}

// magicValue reads magic_prompt: AUTO, ON, OFF, or a boolean (true = ON).
func magicValue(raw json.RawMessage) (string, error) {
	var b bool
	if err := json.Unmarshal(raw, &b); err == nil {
		if b {
			return "ON", nil
		}
		return "OFF", nil
	}
	return enumValue(ExtraMagicPrompt, raw, magicPromptValues)
}

// intValue reads an integer given as a JSON number or a numeric string (multipart forms).
func intValue(key string, raw json.RawMessage) (int, error) {
	var n json.Number
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		n = json.Number(strings.TrimSpace(s))
	} else if err := json.Unmarshal(raw, &n); err != nil {
		return 0, invalid(key, "%s must be an integer", key)
	}
	v, err := strconv.Atoi(n.String())
	if err != nil {
		return 0, invalid(key, "%s must be an integer", key)
	}
	return v, nil
}

func rangeValue(key string, raw json.RawMessage, lo, hi int) (*int, error) {
	v, err := intValue(key, raw)
	if err != nil {
		return nil, err
	}
	if v < lo || v > hi {
		return nil, invalid(key, "%s must be between %d and %d", key, lo, hi)
	}
	return &v, nil
}

// aspectValue reads a ratio as "16:9", "16x9" or "ASPECT_16_9" and returns the canonical "16:9"
// when it is in allowed.
func aspectValue(raw json.RawMessage, allowed []string) (string, error) {
	s, err := stringValue(ExtraAspectRatio, raw)
	if err != nil {
		return "", err
	}
	c := strings.ToUpper(s)
	c = strings.TrimPrefix(c, "ASPECT_")
	c = strings.NewReplacer("X", ":", "_", ":", "*", ":").Replace(c)
	if !slices.Contains(allowed, c) {
		return "", invalid(ExtraAspectRatio, "aspect ratio %q is not one of %s", s, strings.Join(allowed, ", "))
	}
	return c, nil
}

// resolutionValue reads a resolution as "1024x1024" or "RESOLUTION_1024_1024".
func resolutionValue(raw json.RawMessage) (providers.Size, error) {
	s, err := stringValue(ExtraResolution, raw)
	if err != nil {
		return providers.Size{}, err
	}
	c := strings.ToUpper(s)
	if rest, ok := strings.CutPrefix(c, "RESOLUTION_"); ok {
		c = strings.Replace(rest, "_", "x", 1)
	}
	size, err := providers.ParseSize(c)
	if err != nil {
		return providers.Size{}, invalid(ExtraResolution, "resolution %q is not of the form WIDTHxHEIGHT", s)
	}
	return size, nil
}

// palette is Ideogram's color_palette: a preset name, or 1-8 members.
type palette struct {
	Name    string          `json:"name,omitempty"`
	Members []paletteMember `json:"members,omitempty"`
}

type paletteMember struct {
	ColorHex    string   `json:"color_hex"`
	ColorWeight *float64 `json:"color_weight,omitempty"`
}

// paletteValue reads color_palette: an object {"name":…} or {"members":[…]}, the same object as a
// JSON string (multipart forms), or a bare preset name. It returns the object, re-encoded.
func paletteValue(raw json.RawMessage) (json.RawMessage, error) {
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		s = strings.TrimSpace(s)
		if strings.HasPrefix(s, "{") {
			raw = json.RawMessage(s)
		} else {
			raw, _ = json.Marshal(map[string]string{"name": s})
		}
	}
	var p palette
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return nil, invalid(ExtraColorPalette, `color_palette must be {"name": PRESET} or {"members": [{"color_hex": "#rrggbb", "color_weight": 0.05-1}]}`)
	}
	switch {
	case p.Name != "" && len(p.Members) > 0:
		return nil, invalid(ExtraColorPalette, "color_palette takes either a name or members, not both")
	case p.Name != "":
		p.Name = strings.ToUpper(p.Name)
		if !slices.Contains(paletteNames, p.Name) {
			return nil, invalid(ExtraColorPalette, "color_palette name must be one of %s", strings.Join(paletteNames, ", "))
		}
	case len(p.Members) == 0:
		return nil, invalid(ExtraColorPalette, "color_palette needs a name or members")
	case len(p.Members) > 8:
		return nil, invalid(ExtraColorPalette, "color_palette takes at most 8 members")
	}
	for _, mem := range p.Members {
		if !hexColor.MatchString(mem.ColorHex) {
			return nil, invalid(ExtraColorPalette, "color_palette color_hex %q is not of the form #rrggbb", mem.ColorHex)
		}
		if mem.ColorWeight != nil && (*mem.ColorWeight < 0.05 || *mem.ColorWeight > 1) {
			return nil, invalid(ExtraColorPalette, "color_palette color_weight must be between 0.05 and 1")
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("ideogram: encode color_palette: %w", err)
	}
	return b, nil
}

// styleCodesValue reads style_codes: an array of 8-digit hex codes, or one string with codes
// separated by commas.
func styleCodesValue(raw json.RawMessage) ([]string, error) {
	var codes []string
	if err := json.Unmarshal(raw, &codes); err != nil {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return nil, invalid(ExtraStyleCodes, "style_codes must be an array of 8-digit hexadecimal codes")
		}
		for _, c := range strings.Split(s, ",") {
			if c = strings.TrimSpace(c); c != "" {
				codes = append(codes, c)
			}
		}
	}
	if len(codes) == 0 {
		return nil, invalid(ExtraStyleCodes, "style_codes is empty")
	}
	for _, c := range codes {
		if !styleCode.MatchString(c) {
			return nil, invalid(ExtraStyleCodes, "style code %q is not 8 hexadecimal digits", c)
		}
	}
	return codes, nil
}

// PriceQuality returns the quality a request is priced at: the Ideogram 3.0 rendering speed it runs
// at (TURBO, DEFAULT or QUALITY; DEFAULT when it names none), or "" for legacy models, whose prices
// do not depend on quality. It matches PriceTier.Quality in this adapter's catalog and is meant for
// the billing engine; an invalid request yields the speed it would have run at had it been valid.
func PriceQuality(req *providers.Request) string {
	if apiOf(req.Model) != apiV3 {
		return ""
	}
	if raw, ok := req.Extra[ExtraRenderingSpeed]; ok && !isNull(raw) {
		if s, err := enumValue(ExtraRenderingSpeed, raw, renderingSpeeds); err == nil {
			return s
		}
	}
	switch strings.ToLower(req.Quality) {
	case "low":
		return SpeedTurbo
	case "high":
		return SpeedQuality
	}
	return SpeedDefault
}
