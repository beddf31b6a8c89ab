package handlers

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/shardline/shardline/shared/stream"
)

// Options is what a Factory gets to build a handler. The zero value is
// usable: every field has a default.
type Options struct {
	// Out receives the handler's results (print's JSON lines, wordcount's
	// top counts). Nil means os.Stdout. Writes to it are serialised by the
	// handler, so Out itself need not be safe for concurrent use.
	Out io.Writer
	// Logger receives diagnostics. Nil means slog.Default().
	Logger *slog.Logger
	// Interval is the checkpoint interval (-checkpoint-interval):
	// wordcount prints its top counts at most this often. Zero means 1s;
	// a negative value is an error.
	Interval time.Duration
}

// DefaultInterval is the Interval used when Options.Interval is zero; it
// matches the poller's default checkpoint interval.
const DefaultInterval = time.Second

// Factory builds a handler from Options. It is called once per New; the
// handler it returns may be called concurrently from several shards.
type Factory func(Options) (stream.Handler, error)

// WindowFactory builds a windowed handler (for -tumbling-window) from
// Options. It is called once per NewWindow; the handler it returns may be
// called concurrently from several shards.
type WindowFactory func(Options) (stream.WindowHandler, error)

// ErrUnknownHandler is wrapped by the error New or NewWindow returns for a
// name that no one registered.
var ErrUnknownHandler = errors.New("unknown handler")

// ErrNoWindowVariant is wrapped by the error NewWindow returns for a
// handler registered without a windowed variant: it cannot run with a
// tumbling window.
var ErrNoWindowVariant = errors.New("no windowed variant")

// registry maps names to factories. It is a type of its own so that tests
// can use a fresh one; the package-level functions use registered.
type registry struct {
	mu        sync.RWMutex
	factories map[string]Factory
	windows   map[string]WindowFactory // windowed variants
}

// registered is the package's only global: the named handlers, the
// built-ins first.
var registered = &registry{
	factories: map[string]Factory{
		"print":     newPrintHandler,
		"wordcount": newWordCountHandler,
	},
	windows: map[string]WindowFactory{
		"wordcount": newWindowWordCountHandler,
	},
}

// Register makes a handler available to New under name. It is meant to be
// called from an init function, like database/sql.Register: it panics if
// name is empty, f is nil or name is already registered, since each of
// those is a programming error that no caller could handle.
func Register(name string, f Factory) { registered.register(name, f) }

// New builds the handler registered under name with o. An unknown name
// gives an error wrapping ErrUnknownHandler that names the value and lists
// the registered names.
func New(name string, o Options) (stream.Handler, error) { return registered.new(name, o) }

// Names returns the registered handler names, sorted.
func Names() []string { return registered.names() }

// RegisterWindow makes a windowed handler available to NewWindow under
// name, normally the name of the plain handler it is the windowed variant
// of. It panics as Register does.
func RegisterWindow(name string, f WindowFactory) { registered.registerWindow(name, f) }

// NewWindow builds the windowed variant registered under name with o, for
// a tumbling window. A name registered only as a plain handler gives an
// error wrapping ErrNoWindowVariant; a name no one registered, one
// wrapping ErrUnknownHandler. Both errors name the windowed handlers.
func NewWindow(name string, o Options) (stream.WindowHandler, error) {
	return registered.newWindow(name, o)
}

// WindowNames returns the names with a windowed variant, sorted.
func WindowNames() []string { return registered.windowNames() }

func (r *registry) register(name string, f Factory) {
	if name == "" {
		panic("handlers: Register with an empty name")
	}
	if f == nil {
		panic(fmt.Sprintf("handlers: Register %q with a nil factory", name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.factories[name]; dup {
		panic(fmt.Sprintf("handlers: Register called twice for %q", name))
	}
	r.factories[name] = f
}

func (r *registry) new(name string, o Options) (stream.Handler, error) {
	r.mu.RLock()
	f, ok := r.factories[name]
	r.mu.RUnlock()
	if !ok {
		registered := "none"
		if names := r.names(); len(names) > 0 {
			registered = strings.Join(names, ", ")
		}
		return nil, fmt.Errorf("handler %q: %w; registered: %s", name, ErrUnknownHandler, registered)
	}
	h, err := f(o)
	if err != nil {
		return nil, fmt.Errorf("handler %q: %w", name, err)
	}
	if h == nil {
		return nil, fmt.Errorf("handler %q: factory returned no handler", name)
	}
	return h, nil
}

func (r *registry) names() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.factories))
}

func (r *registry) registerWindow(name string, f WindowFactory) {
	if name == "" {
		panic("handlers: RegisterWindow with an empty name")
	}
	if f == nil {
		panic(fmt.Sprintf("handlers: RegisterWindow %q with a nil factory", name))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.windows[name]; dup {
		panic(fmt.Sprintf("handlers: RegisterWindow called twice for %q", name))
	}
	if r.windows == nil {
		r.windows = make(map[string]WindowFactory)
	}
	r.windows[name] = f
}

func (r *registry) newWindow(name string, o Options) (stream.WindowHandler, error) {
	r.mu.RLock()
	f, ok := r.windows[name]
	_, plain := r.factories[name]
	r.mu.RUnlock()
	if !ok {
		windowed := "none"
		if names := r.windowNames(); len(names) > 0 {
			windowed = strings.Join(names, ", ")
		}
		if plain {
			return nil, fmt.Errorf("handler %q: %w for a tumbling window; windowed handlers: %s", name, ErrNoWindowVariant, windowed)
		}
		return nil, fmt.Errorf("handler %q: %w; windowed handlers: %s", name, ErrUnknownHandler, windowed)
	}
	h, err := f(o)
	if err != nil {
		return nil, fmt.Errorf("handler %q: %w", name, err)
	}
	if h == nil {
		return nil, fmt.Errorf("handler %q: factory returned no handler", name)
	}
	return h, nil
}

func (r *registry) windowNames() []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return slices.Sorted(maps.Keys(r.windows))
}
