// Package yunyx is the adapter for yunyx (api.yunyx.top), a host that serves FLUX.1-schnell and
// Stable Diffusion 3.5 Large through POST {base}/images/generations with a JSON body
// (PROVIDERS.md §4, seed 003; docs: https://docs.api.yunyx.top/api/text-to-image).
//
// # Upstream
//
//   - Base URL https://api.yunyx.top/v1 (DefaultBaseURL); auth "Authorization: Bearer <key>".
//     Env: YUNYX_API_KEY, YUNYX_BASE_URL.
//   - Models: "FLUX.1-schnell" and "stable-diffusion-3-5-large", with no vendor prefix.
//   - Request fields: model, prompt, image_size (one of 1024x1024, 512x1024, 768x512, 768x1024,
//     1024x576, 576x1024; required, documented default 1024x1024), prompt_enhancement (some
//     models, default false), seed (0 … 9 999 999 999, int64). image_size is always sent — the
//     requested size, else the model's Size.Default (1024x1024) — so the upstream renders the size
//     billing prices; seed 003 allows no custom sizes.
//     Nothing else exists: no count (MaxN 1, the front door fans out), no negative prompt, steps,
//     guidance or input images. The adapter refuses those with KindUnsupported naming them, even
//     for models added by configuration, since the wire cannot carry them. A steps value of 4 on
//     FLUX.1-schnell is accepted and dropped (the model always runs 4 steps).
//   - Success: {"images":[{"url"}],"timings":{"inference"},"seed"}, the same object as SiliconFlow;
//     URLs valid one hour (Output.Expires); "&" in them arrives as \u0026 (plain JSON escaping);
//     no created time (Result.Created stays zero); no request id header is documented.
//
// # Assumptions
//
// yunyx documents statuses (400, 401, 404, 429, 503, 504) but not error bodies. They are assumed
// to be SiliconFlow's — {"code":…,"message":…,"data":null} and a bare-string 401 — because the
// request schema, enum, seed range, response and status list all match SiliconFlow's 2024 schema
// (PROVIDERS.md §4.5 [INFER]); the classification leans on the status so a different body shape
// still maps correctly. Prices are not in the seed: both catalog prices are assumed (Source
// providers.Assumed) and per image, since yunyx documents no steps.
//
// The wire code is shared with the siliconflow adapter (providers/internal/sfwire).
package yunyx
