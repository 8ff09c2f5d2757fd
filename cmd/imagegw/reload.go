package main

import (
	"context"
	"os"

	"github.com/imagegw/imagegw/internal/app"
)

// reloadOnSignal reloads a's configuration from its source on every signal from sig (SIGHUP)
// until ctx ends. A reload logs what it applied, or every problem of a configuration it
// refused (the running one stays); signals arriving during a reload are merged into one more.
func reloadOnSignal(ctx context.Context, a *app.App, sig <-chan os.Signal) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-sig:
			_, _ = a.ReloadFile(ctx)
		}
	}
}
