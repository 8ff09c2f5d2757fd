package billing

// ClaimsInFlight reports how many of e's accounts have a claim in flight, so that tests can wait
// for background claims instead of racing them.
func ClaimsInFlight(e *Escrow) int {
	n := 0
	for _, ac := range e.snapshot() {
		ac.mu.Lock()
		if ac.claim != nil {
			n++
		}
		ac.mu.Unlock()
	}
	return n
}
