package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// FsyncPolicy is billing.journal_fsync: when a charge journaled in the page cache (where it
// already survives a crash of the process, SIGKILL included) is also flushed to the disk, where
// it survives a crash of the machine.
//
//   - true, the default: before its response. One fsync covers every charge made meanwhile
//     (group commit); a machine crash loses no charge whose response left.
//   - a duration, such as 10ms: within that long after its response, by a background flush.
//     Responses do not wait for the disk; a machine crash can lose the charges of about the last
//     interval (their responses have left).
//   - false: when the kernel writes it back (about 30 s on Linux).
type FsyncPolicy struct {
	Off   bool
	After time.Duration // > 0: flushed within After of the response, not before it
}

// maxFsyncAfter bounds journal_fsync as a duration: past a second it is no bound to speak of.
const maxFsyncAfter = time.Second

// ParseFsyncPolicy reads true, false or a duration from 1ms to 1s. As a bool it also takes what
// the setting took when it was one: strconv's spellings, and YAML 1.1's y, yes, on, n, no and off.
func ParseFsyncPolicy(s string) (FsyncPolicy, error) {
	s = strings.TrimSpace(s)
	if b, err := strconv.ParseBool(s); err == nil {
		return FsyncPolicy{Off: !b}, nil
	}
	switch strings.ToLower(s) {
	case "y", "yes", "on":
		return FsyncPolicy{}, nil
	case "n", "no", "off":
		return FsyncPolicy{Off: true}, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return FsyncPolicy{}, fmt.Errorf("%q is not true, false or a duration (like 10ms)", s)
	}
	if d < time.Millisecond || d > maxFsyncAfter {
		return FsyncPolicy{}, fmt.Errorf("%v is out of range: a flush interval is 1ms to %v", d, maxFsyncAfter)
	}
	return FsyncPolicy{After: d}, nil
}

// String is what ParseFsyncPolicy reads back.
func (p FsyncPolicy) String() string {
	switch {
	case p.Off:
		return "false"
	case p.After > 0:
		return p.After.String()
	default:
		return "true"
	}
}

// UnmarshalYAML reads true, false or a duration; a bad value is a *yaml.TypeError, so decoding
// goes on and the file's other problems are reported with it.
func (p *FsyncPolicy) UnmarshalYAML(n *yaml.Node) error {
	v, err := ParseFsyncPolicy(n.Value) // a sequence or mapping has no Value: refused as ""
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: billing.journal_fsync: %v", n.Line, err)}}
	}
	*p = v
	return nil
}

// MarshalYAML prints what UnmarshalYAML reads.
func (p FsyncPolicy) MarshalYAML() (any, error) {
	if p.After > 0 {
		return p.After.String(), nil
	}
	return !p.Off, nil
}
