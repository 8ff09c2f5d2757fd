// Package arkwire holds what the Ark and Modelverse adapters (providers/ark,
// providers/modelverse) do the same way: both upstreams take a JSON POST
// {base}/images/generations with "Authorization: Bearer <key>", answer in OpenAI's shape
// ({"created","data":[{"url"|"b64_json","size","error"}],"usage"}, b64_json possibly behind a
// "data:<type>;base64," prefix) and fail with an {"error":{"code","message","param","type"}}
// envelope. Modelverse relays Seedream in Ark's own format, which is why the two agree.
//
// What differs stays in the adapters: the request bodies (Ark's "image" string or array,
// Modelverse's "image" and "images"), the error codes and what the envelope's param holds (a
// parameter name on Ark, the request id on Modelverse), where the request id comes from, the
// catalogs, the URL lifetimes and each model's rules. The shared code calls back into the
// adapter where a decision is the vendor's (classifying an error code, for example).
//
// Everything in this package is pure except Channel.Post, which performs the request through the
// channel's HTTP client, and Channel.LogError, which writes to the channel's logger. The fake
// upstreams' common skeleton is in the arkfake subpackage, the tests' common helpers in arktest.
package arkwire
