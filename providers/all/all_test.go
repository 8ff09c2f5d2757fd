package all_test

import (
	"testing"

	"github.com/imagegw/imagegw/providers"
	_ "github.com/imagegw/imagegw/providers/all"
)

// TestRegistered checks that every adapter linked in by this package is registered and can be
// built from an empty configuration without touching the network.
func TestRegistered(t *testing.T) {
	for _, name := range []string{"ark", "ideogram", "modelverse", "openai", "openai-compatible", "sandbox", "siliconflow", "yunyx"} {
		if !providers.Registered(name) {
			t.Errorf("provider %q is not registered (registered: %v)", name, providers.Names())
		}
	}
	p, err := providers.New("sandbox", providers.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Models()) == 0 {
		t.Fatal("the sandbox has no models")
	}
}
