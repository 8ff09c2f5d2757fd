package ark

import (
	"time"

	"github.com/imagegw/imagegw/internal/money"
	"github.com/imagegw/imagegw/providers"
)

// Upstream model ids of the built-in catalog (PROVIDERS.md §3.1, [CONF: S34, S39]).
const (
	ModelSeedream30T2I = "doubao-seedream-3-0-t2i-250415"
	ModelSeedEdit30I2I = "doubao-seededit-3-0-i2i-250628"
	ModelSeedream40    = "doubao-seedream-4-0-250828"
	ModelSeedream45    = "doubao-seedream-4-5-251128"
	ModelSeedream50    = "doubao-seedream-5-0-260128"
)

// ExtraWatermark is the one extension field Ark models take: a JSON boolean that turns the
// upstream's "AI生成" watermark on. The adapter sends watermark=false unless it is true.
const ExtraWatermark = "watermark"

// URLTTL is how long Ark's signed image URLs stay valid: 24 hours (PROVIDERS.md §3.1.1).
const URLTTL = 24 * time.Hour

// Seed and guidance bounds shared by the models that honour them (PROVIDERS.md §3.1, seed row:
// −1 … 2 147 483 647 with −1 = random; guidance_scale row: 1 … 10).
const (
	seedMin     = -1
	seedMax     = 2147483647
	guidanceMin = 1
	guidanceMax = 10
)

// Pixel bounds of the Seedream 4.x/5.0 free-form sizes (PROVIDERS.md §3.1 size row).
const (
	// seedream40MinPixels is 1280×720, the floor the 4.0 mirrors quote most often [S45, S36];
	// some mirrors say 1024×1024, so a size between the two may still be refused upstream.
	seedream40MinPixels = 1280 * 720
	// seedream45MinPixels is 2560×1440 ("image size must be at least 3686400 pixels" [S32]).
	seedream45MinPixels = 3686400
	// seedreamMaxPixels is 4096×4096.
	seedreamMaxPixels = 16777216
	// seedreamMaxAspect bounds width/height and height/width (aspect 1/16 … 16 [S45, S36]).
	seedreamMaxAspect = 16
)

// cny is a list price in yuan per image. No document gives an Ark price (the seeds quote none,
// PROVIDERS.md cites no Volcengine price page), so every one is providers.Assumed.
func cny(amount string) providers.Price {
	return providers.Price{Unit: providers.PerImage, Currency: "CNY", Amount: money.MustParse(amount), Source: providers.Assumed}
}

// catalog is the built-in model list. Every limit is the validation the front door applies, so
// it mirrors PROVIDERS.md §3.1 exactly; where the sources disagree the comment says which was
// chosen.
//
// Prices: neither the seeds nor PROVIDERS.md give Ark prices. The amounts below are Volcengine's
// public per-image list prices as remembered by the author (not from a source in this
// repository, unverified); 5.0 has no remembered price and is assumed equal to 4.5. Every price's
// Source is therefore providers.Assumed, and operators should re-price them in config before
// billing real money. Ark has no free quota: seed 004's free images (免费额度) are Modelverse's
// (providers/modelverse), for models Ark does not serve.
//
// Sizes: Size.Default is the upstream's documented default (§3.1 size row: 3.0-t2i 1024x1024,
// 4.x 2048x2048), and the adapter writes it on the wire when a request names no size, so the size
// billing resolves is the size sent (see wireSize).
var catalog = []providers.Model{
	{
		ID:          ModelSeedream30T2I,
		Description: "Doubao Seedream 3.0 text-to-image: free-form WxH sizes with 512–2048 px sides; no reference images.",
		Operations:  []providers.Operation{providers.OpGenerate},
		// §3.1 size row: WxH within [512x512, 2048x2048], default 1024x1024.
		Size:        providers.SizeRule{MinSide: 512, MaxSide: 2048, Default: providers.Size{W: 1024, H: 1024}},
		MaxN:        1, // Ark has no count field (§3.1): the front door fans out.
		Params:      providers.ParamSeed | providers.ParamGuidance,
		MinGuidance: guidanceMin, MaxGuidance: guidanceMax,
		SeedMin: seedMin, SeedMax: seedMax,
		Extras: []string{ExtraWatermark},
		Price:  cny("0.259"), // not from a source: remembered Volcengine list price, unverified.
		URLTTL: URLTTL,
	},
	{
		ID: ModelSeedEdit30I2I,
		Description: "Doubao SeedEdit 3.0: instruction-based editing of exactly one JPEG or PNG image (no mask); " +
			"the output keeps the input's aspect ratio, so no size can be requested.",
		// Modelled as an edit without mask (OpenAI's /v1/images/edits shape: one image plus an
		// instruction), not as generate with a required reference image, because the catalog
		// cannot say "reference image required" for generate and an edit always carries one.
		Operations: []providers.Operation{providers.OpEdit},
		// §3.1 size row: only "adaptive". An empty rule: the adapter sends size=adaptive and
		// refuses an explicit size.
		Size:           providers.SizeRule{},
		MaxN:           1,
		MaxInputImages: 1, // §3.1 image row: required, exactly one [S36].
		Params:         providers.ParamSeed | providers.ParamGuidance,
		MinGuidance:    guidanceMin, MaxGuidance: guidanceMax,
		SeedMin: seedMin, SeedMax: seedMax,
		Extras: []string{ExtraWatermark},
		Price:  cny("0.3"), // not from a source: remembered Volcengine list price, unverified.
		URLTTL: URLTTL,
	},
	{
		ID: ModelSeedream40,
		Description: "Doubao Seedream 4.0: WxH sizes of 921,600–16,777,216 pixels (aspect 1:16–16:1), " +
			"up to 10 reference images; edits without mask.",
		Operations: []providers.Operation{providers.OpGenerate, providers.OpEdit},
		// §3.1 size row: 1K/2K/4K or WxH; pixel floor 1280×720 (some mirrors: 1024×1024) and
		// ceiling 4096×4096; default 2048x2048.
		Size: providers.SizeRule{MinPixels: seedream40MinPixels, MaxPixels: seedreamMaxPixels,
			Default: providers.Size{W: 2048, H: 2048}},
		MaxN:           1,
		MaxInputImages: 10, // §3.1 image row: 4.0 takes up to 10 references [UNCONF: S45].
		Params:         providers.ParamReferenceImage,
		Extras:         []string{ExtraWatermark},
		Price:          cny("0.2"), // not from a source: remembered Volcengine list price, unverified.
		URLTTL:         URLTTL,
	},
	{
		ID: ModelSeedream45,
		Description: "Doubao Seedream 4.5: WxH sizes of 3,686,400–16,777,216 pixels (at least 2560x1440, aspect 1:16–16:1), " +
			"up to 14 reference images; edits without mask.",
		Operations: []providers.Operation{providers.OpGenerate, providers.OpEdit},
		// §3.1 size row: 2K/4K or WxH with ≥ 3 686 400 and ≤ 16 777 216 pixels; adaptive and 1K
		// rejected [S31, S32].
		Size: providers.SizeRule{MinPixels: seedream45MinPixels, MaxPixels: seedreamMaxPixels,
			Default: providers.Size{W: 2048, H: 2048}},
		MaxN:           1,
		MaxInputImages: 14, // §3.1 image row: 4.5/5.0 up to 14 references [S19].
		Params:         providers.ParamReferenceImage,
		Extras:         []string{ExtraWatermark},
		Price:          cny("0.25"), // not from a source: remembered Volcengine list price, unverified.
		URLTTL:         URLTTL,
	},
	{
		ID: ModelSeedream50,
		Description: "Doubao Seedream 5.0: WxH sizes of 3,686,400–16,777,216 pixels (aspect 1:16–16:1), " +
			"up to 14 reference images, output_format jpeg or png; edits without mask.",
		Operations: []providers.Operation{providers.OpGenerate, providers.OpEdit},
		// §3.1 size row: 2K/3K/4K or WxH. The pixel bounds are not stated for 5.0; Modelverse's
		// Seedream page gives ≥ 2560×1440 for 4.5 and 5.0 alike [S19], so 4.5's bounds are used
		// [INFER].
		Size: providers.SizeRule{MinPixels: seedream45MinPixels, MaxPixels: seedreamMaxPixels,
			Default: providers.Size{W: 2048, H: 2048}},
		MaxN:           1,
		MaxInputImages: 14,
		Params:         providers.ParamReferenceImage | providers.ParamOutputFormat,
		Extras:         []string{ExtraWatermark},
		Price:          cny("0.25"), // not from any source: assumed equal to 4.5.
		URLTTL:         URLTTL,
	},
}

// outputFormats are the output_format values 5.0 takes (§3.1: jpeg, png; default jpeg).
var outputFormats = []string{"jpeg", "png"}

// lookup returns the built-in model with id, or nil.
func lookup(id string) *providers.Model {
	for i := range catalog {
		if catalog[i].ID == id {
			return &catalog[i]
		}
	}
	return nil
}
