package providers

import (
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"

	"go.uber.org/zap"
)

var (
	registryMu sync.RWMutex
	registry   = map[string]Factory{}
)

// Register makes a provider type available by name. It panics if the name is empty, the factory
// nil, or the name already registered: two adapters claiming one name is a programming error.
func Register(name string, f Factory) {
	registryMu.Lock()
	defer registryMu.Unlock()
	if name == "" || f == nil {
		panic("providers: Register with empty name or nil factory")
	}
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("providers: Register called twice for provider %q", name))
	}
	registry[name] = f
}

// New builds a provider of the registered type name.
func New(name string, cfg Config) (Provider, error) {
	registryMu.RLock()
	f, ok := registry[name]
	registryMu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("unknown provider %q (known: %v)", name, Names())
	}
	if cfg.Name == "" {
		cfg.Name = name
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.HTTP == nil {
		cfg.HTTP = &http.Client{}
	}
	cfg.Logger = cfg.Logger.With(zap.String("provider", name), zap.String("channel", cfg.Name))
	p, err := f(cfg)
	if err != nil {
		return nil, fmt.Errorf("provider %q (channel %q): %w", name, cfg.Name, err)
	}
	return p, nil
}

// Names lists the registered provider types in sorted order.
func Names() []string {
	registryMu.RLock()
	defer registryMu.RUnlock()
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Registered reports whether a provider type is registered.
func Registered(name string) bool {
	registryMu.RLock()
	defer registryMu.RUnlock()
	_, ok := registry[name]
	return ok
}

// OperationsOf lists the operations p implements, in the order of Operations.
func OperationsOf(p Provider) []Operation {
	return slices.DeleteFunc(slices.Clone(Operations), func(op Operation) bool { return !Supports(p, op) })
}
