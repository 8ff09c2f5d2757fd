package httpx_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/imagegw/imagegw/internal/httpx"
)

// One client per process: adapters call their upstreams with it, and a Fetcher built on it
// downloads image URLs. Only the simulator's loopback address is let through.
func Example() {
	client := httpx.New(httpx.Options{AllowHosts: []string{"127.0.0.1:8089"}})
	f := httpx.NewFetcher(client)

	_, _, err := f.Fetch(context.Background(), "http://169.254.169.254/latest/meta-data/", 1<<20)
	fmt.Println(errors.Is(err, httpx.ErrBlockedAddress))

	_, _, err = f.Fetch(context.Background(), "file:///etc/passwd", 1<<20)
	fmt.Println(errors.Is(err, httpx.ErrBlockedScheme))

	data, ct, err := f.Fetch(context.Background(), "data:image/gif;base64,R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7", 1<<20)
	fmt.Println(len(data), ct, err)
	// Output:
	// true
	// true
	// 42 image/gif <nil>
}
