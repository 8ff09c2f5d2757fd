// Package httpx is the gateway's one outbound HTTP client: the client adapters use to call their
// upstreams, and the Fetcher that downloads client-supplied reference images and provider-returned
// image URLs.
//
// Every client built by New is SSRF-safe. Its dialer checks the address it is about to connect to,
// after DNS resolution (net.Dialer.Control), and refuses loopback, private (RFC 1918, ULA),
// link-local (including cloud metadata endpoints such as 169.254.169.254 and fd00:ec2::254),
// CGNAT, multicast, unspecified, reserved and documentation ranges, and the IPv4-mapped, NAT64 and
// 6to4 IPv6 spellings of those. Because the check runs on the resolved address of every
// connection, a host name that resolves (or re-resolves, DNS rebinding) to an internal address is
// refused too, and so is every hop of a redirect chain. Only http and https URLs are fetched;
// redirects are capped. No proxy is ever used: a proxy would dial on our behalf and bypass the check.
//
// Only GET and HEAD requests (downloads) follow redirects, and a hop carries none of the
// original request's headers but Accept, Accept-Language and User-Agent: no Authorization, no
// cookie, no custom key header such as Api-Key, no Referer, whether or not the host or port
// changes. Any other method (an API call) gets the 3xx answer back unfollowed, so its body and
// credentials are never re-sent elsewhere.
//
// Every exchange is bounded: Options.Timeout bounds the whole of it (the gateway sets it from
// outbound.timeout), and a response body must keep arriving at Options.MinBodyRate or the read
// fails with ErrTooSlow, so a peer that trickles a body cannot hold a request until the timeout.
//
// Options.AllowHosts names the exceptions (the provider simulator on localhost, a test server, a
// private upstream in a VPC): a host name, host:port, IP address, ip:port or CIDR prefix.
//
// Errors are distinguishable with errors.Is, also through the *url.Error that http.Client
// returns: ErrBlockedAddress, ErrBlockedScheme, ErrTooManyRedirects, ErrTooLarge, ErrNotImage,
// ErrBadDataURI, ErrTooSlow and ErrUnexpectedStatus (the latter carried by a *StatusError).
package httpx
