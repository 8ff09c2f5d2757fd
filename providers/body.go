package providers

import (
	"context"
	"fmt"
	"io"
)

// DefaultMaxResponseBytes caps an upstream answer when the channel sets no cap: enough for
// several large base64 images, small enough that a runaway body cannot exhaust memory.
const DefaultMaxResponseBytes = 64 << 20

// ReadBody reads an upstream body of at most max bytes (DefaultMaxResponseBytes when max <= 0).
// A longer body is a KindUpstreamBadResponse; a read failure is classified by TransportError.
func ReadBody(ctx context.Context, provider string, r io.Reader, max int64) ([]byte, error) {
	if max <= 0 {
		max = DefaultMaxResponseBytes
	}
	b, err := io.ReadAll(io.LimitReader(r, max+1))
	if err != nil {
		return nil, TransportError(ctx, provider, fmt.Errorf("read response: %w", err))
	}
	if int64(len(b)) > max {
		return nil, &Error{Kind: KindUpstreamBadResponse, Provider: provider,
			Message: fmt.Sprintf("the provider's answer exceeded %d bytes", max)}
	}
	return b, nil
}
