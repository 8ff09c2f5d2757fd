package frontdoor

import (
	"context"
	"net/http"

	"go.uber.org/zap"

	"github.com/imagegw/imagegw/providers"
)

// host stores image bytes in the image store and returns the URL the client gets: the
// gateway's image route (any replica on the same store serves it), or a presigned object-store
// URL when the store presigns.
func (h *Handler) host(ctx context.Context, r *http.Request, data []byte, contentType string) (string, error) {
	name, err := h.o.Images.Put(ctx, data, contentType)
	if err == nil {
		var u string
		if u, err = h.o.Images.Link(ctx, name, h.baseURL(r)+"/v1/images/files/"); err == nil {
			return u, nil
		}
	}
	return "", &providers.Error{Kind: providers.KindInternal, Message: "an image could not be stored", Err: err}
}

// rehost is the keep policy for a provider's image URL (Options.RehostProviderURLs): the image
// is downloaded through the SSRF-safe output client, checked like provider bytes and hosted,
// so the client's URL lives the store's TTL instead of the provider's (an hour for some).
// Rehosting is best effort: when the download or the store fails, the provider's URL is passed
// through as it would be without the policy (and a warning logged). An image that is not valid
// or too large is refused, as for b64_json.
func (h *Handler) rehost(ctx context.Context, r *http.Request, it *item, providerURL string) (string, error) {
	data, contentType, err := h.o.OutputFetcher.Fetch(ctx, providerURL, h.o.MaxOutputBytes)
	if err != nil {
		h.o.Logger.Warn("provider image not rehosted: download failed; passing its URL through", zap.Error(err))
		return providerURL, nil
	}
	if err := h.checkOutput(it, data); err != nil {
		return "", err
	}
	u, err := h.host(ctx, r, data, contentType)
	if err != nil {
		h.o.Logger.Warn("provider image not rehosted: store failed; passing its URL through", zap.Error(err))
		return providerURL, nil
	}
	return u, nil
}
