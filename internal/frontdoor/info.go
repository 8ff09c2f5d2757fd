package frontdoor

import (
	"context"
	"sync"
)

// Info carries what the access log and metrics want to know about a request, filled in as the
// request is served. The server's middleware puts one in the context.
type Info struct {
	mu sync.Mutex
	// RequestID is the gateway's own id for the request, unique: the ledger's key.
	RequestID string
	// ClientRequestID is the id the client sent, if any (a label for correlation only).
	ClientRequestID string
	Model           string
	Provider        string
	Channel         string
	KeyID           string
	ErrorKind       string
	Images          int
}

type infoKey struct{}

// InfoKey is the context key of a request's *Info, for a context type that carries the Info
// itself (the server's request context) instead of a WithInfo layer.
var InfoKey any = infoKey{}

// InfoFrom returns the request's Info, or a throwaway one.
func InfoFrom(ctx context.Context) *Info {
	if i, ok := ctx.Value(infoKey{}).(*Info); ok {
		return i
	}
	return &Info{}
}

// Update changes the info under its lock.
func (i *Info) Update(f func(*Info)) {
	i.mu.Lock()
	defer i.mu.Unlock()
	f(i)
}

// Snapshot returns a copy for logging.
func (i *Info) Snapshot() Info {
	i.mu.Lock()
	defer i.mu.Unlock()
	return Info{RequestID: i.RequestID, ClientRequestID: i.ClientRequestID, Model: i.Model, Provider: i.Provider, Channel: i.Channel, KeyID: i.KeyID, ErrorKind: i.ErrorKind, Images: i.Images}
}
