//go:build race

package providers

// raceEnabled: the race detector makes sync.Pool drop some of what is put back.
const raceEnabled = true
