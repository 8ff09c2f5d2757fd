package ideogram

// The enumerations below are copied from Ideogram's official OpenAPI description as summarised in
// PROVIDERS.md Appendix A (source S18 @bd27966). The legacy and 3.0 resolution lists are different
// lists, not two spellings of one: 800x1280 exists only in 3.0, while 640x1024, 720x1280, 768x1024,
// 768x1152, 768x1232, 1024x640, 1024x768, 1152x768, 1232x768 and 1280x720 exist only in the legacy
// list. The wire spelling differs too: RESOLUTION_W_H (legacy) and WxH (3.0).

// legacyResolutions are the 78 sizes of the legacy API (V_2 and newer), as "WxH".
var legacyResolutions = []string{
	"512x1536", "576x1408", "576x1472", "576x1536", "640x1024", "640x1344", "640x1408", "640x1472",
	"640x1536", "704x1152", "704x1216", "704x1280", "704x1344", "704x1408", "704x1472", "720x1280",
	"736x1312", "768x1024", "768x1088", "768x1152", "768x1216", "768x1232", "768x1280", "768x1344",
	"832x960", "832x1024", "832x1088", "832x1152", "832x1216", "832x1248", "864x1152", "896x960",
	"896x1024", "896x1088", "896x1120", "896x1152", "960x832", "960x896", "960x1024", "960x1088",
	"1024x640", "1024x768", "1024x832", "1024x896", "1024x960", "1024x1024", "1088x768", "1088x832",
	"1088x896", "1088x960", "1120x896", "1152x704", "1152x768", "1152x832", "1152x864", "1152x896",
	"1216x704", "1216x768", "1216x832", "1232x768", "1248x832", "1280x704", "1280x720", "1280x768",
	"1280x800", "1312x736", "1344x640", "1344x704", "1344x768", "1408x576", "1408x640", "1408x704",
	"1472x576", "1472x640", "1472x704", "1536x512", "1536x576", "1536x640",
}

// v3Resolutions are the 69 sizes of the Ideogram 3.0 API, as "WxH".
var v3Resolutions = []string{
	"512x1536", "576x1408", "576x1472", "576x1536", "640x1344", "640x1408", "640x1472", "640x1536",
	"704x1152", "704x1216", "704x1280", "704x1344", "704x1408", "704x1472", "736x1312", "768x1088",
	"768x1216", "768x1280", "768x1344", "800x1280", "832x960", "832x1024", "832x1088", "832x1152",
	"832x1216", "832x1248", "864x1152", "896x960", "896x1024", "896x1088", "896x1120", "896x1152",
	"960x832", "960x896", "960x1024", "960x1088", "1024x832", "1024x896", "1024x960", "1024x1024",
	"1088x768", "1088x832", "1088x896", "1088x960", "1120x896", "1152x704", "1152x832", "1152x864",
	"1152x896", "1216x704", "1216x768", "1216x832", "1248x832", "1280x704", "1280x768", "1280x800",
	"1312x736", "1344x640", "1344x704", "1344x768", "1408x576", "1408x640", "1408x704", "1472x576",
	"1472x640", "1472x704", "1536x512", "1536x576", "1536x640",
}

// legacyAspectRatios are the 11 ratios of the legacy API, canonical "W:H"; the wire form is ASPECT_W_H.
var legacyAspectRatios = []string{"1:1", "16:9", "9:16", "16:10", "10:16", "3:2", "2:3", "4:3", "3:4", "1:3", "3:1"}

// v3AspectRatios are the 15 ratios of the 3.0 API, canonical "W:H"; the wire form is WxH ("16x9").
var v3AspectRatios = []string{"1:1", "16:9", "9:16", "16:10", "10:16", "3:2", "2:3", "4:3", "3:4", "1:3", "3:1", "1:2", "2:1", "4:5", "5:4"}

// v3StylePresets are the 62 style presets of the 3.0 API.
var v3StylePresets = []string{
	"80S_ILLUSTRATION", "90S_NOSTALGIA", "ABSTRACT_ORGANIC", "ANALOG_NOSTALGIA", "ART_BRUT",
	"ART_DECO", "ART_POSTER", "AURA", "AVANT_GARDE", "BAUHAUS",
	"BLUEPRINT", "BLURRY_MOTION", "BRIGHT_ART", "C4D_CARTOON", "CHILDRENS_BOOK",
	"COLLAGE", "COLORING_BOOK_I", "COLORING_BOOK_II", "CUBISM", "DARK_AURA",
	"DOODLE", "DOUBLE_EXPOSURE", "DRAMATIC_CINEMA", "EDITORIAL", "EMOTIONAL_MINIMAL",
	"ETHEREAL_PARTY", "EXPIRED_FILM", "FLAT_ART", "FLAT_VECTOR", "FOREST_REVERIE",
	"GEO_MINIMALIST", "GLASS_PRISM", "GOLDEN_HOUR", "GRAFFITI_I", "GRAFFITI_II",
	"HALFTONE_PRINT", "HIGH_CONTRAST", "HIPPIE_ERA", "ICONIC", "JAPANDI_FUSION",
	"JAZZY", "LONG_EXPOSURE", "MAGAZINE_EDITORIAL", "MINIMAL_ILLUSTRATION", "MIXED_MEDIA",
	"MONOCHROME", "NIGHTLIFE", "OIL_PAINTING", "OLD_CARTOONS", "PAINT_GESTURE",
	"POP_ART", "RETRO_ETCHING", "RIVIERA_POP", "SPOTLIGHT_80S", "STYLIZED_RED",
	"SURREAL_COLLAGE", "TRAVEL_POSTER", "VINTAGE_GEO", "VINTAGE_POSTER", "WATERCOLOR",
	"WEIRD", "WOODBLOCK_PRINT",
}

// legacyStyleTypes are the style_type values of the legacy API (V_2 and newer); the public docs name
// the first six, the official spec adds FICTION, CUSTOM and STYLIZED.
var legacyStyleTypes = []string{"AUTO", "GENERAL", "REALISTIC", "DESIGN", "RENDER_3D", "ANIME", "FICTION", "CUSTOM", "STYLIZED"}

// v3StyleTypes are the style_type values of the 3.0 API; the public docs name the first four.
var v3StyleTypes = []string{"AUTO", "GENERAL", "REALISTIC", "DESIGN", "CUSTOM", "FICTION", "STYLIZED"}

// renderingSpeeds are the 3.0 rendering speeds the gateway sends. The spec also knows FLASH and
// BALANCED, which are neither publicly documented nor priced in seed 002, so they are refused.
var renderingSpeeds = []string{"TURBO", "DEFAULT", "QUALITY"}

// magicPromptValues are the values of magic_prompt (3.0) and magic_prompt_option (legacy).
var magicPromptValues = []string{"AUTO", "ON", "OFF"}

// paletteNames are the color palette presets.
var paletteNames = []string{"EMBER", "FRESH", "JUNGLE", "MAGIC", "MELON", "MOSAIC", "PASTEL", "ULTRAMARINE"}

// describeModelVersions are the describe_model_version values the gateway sends (CUSTOM needs a
// custom model the gateway cannot name, so it is not offered).
var describeModelVersions = []string{"V_2", "V_3"}
