// Package sfwire holds the wire format that SiliconFlow and yunyx share: the JSON body of
// POST {base}/images/generations, the {images:[{url}], timings, seed} answer, the
// {"code":…,"message":…,"data":null} error envelope with its bare-string 401, and the one HTTP
// call both adapters make.
//
// yunyx (PROVIDERS.md §4) documents the same request fields (a subset), the same response object
// and the same status list as SiliconFlow (§1); its error bodies are undocumented and assumed to be
// SiliconFlow's (§4.5 [INFER]). Keeping the format here lets both adapters decode and classify
// answers with one tested, fuzzed implementation.
//
// Everything in this package is pure except Caller.Post, which performs the request through the
// channel's HTTP client.
package sfwire
