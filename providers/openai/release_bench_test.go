package openai

import "github.com/imagegw/imagegw/providers"

// release gives back what res holds, as the front door does once the response is written.
func release(res *providers.Result) { res.Release() }
