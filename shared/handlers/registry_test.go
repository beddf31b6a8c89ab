package handlers

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/shardline/shardline/shared/stream"
)

func nopHandler(context.Context, events.KinesisEvent) (events.KinesisEventResponse, error) {
	return events.KinesisEventResponse{}, nil
}

func nopFactory(Options) (stream.Handler, error) { return nopHandler, nil }

func TestNamesBuiltins(t *testing.T) {
	got := Names()
	for _, want := range []string{"print", "wordcount"} {
		if !slices.Contains(got, want) {
			t.Errorf("Names() = %q, want it to contain %q", got, want)
		}
	}
	if !slices.IsSorted(got) {
		t.Errorf("Names() = %q, want sorted", got)
	}
}

func TestNewBuiltins(t *testing.T) {
	ev := stream.Event(stream.Source{}, []stream.Record{{ShardID: "shardId-000000000000", SequenceNumber: "1", Data: []byte("a b a")}})
	for _, name := range []string{"print", "wordcount"} {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			h, err := New(name, Options{Out: &out})
			if err != nil {
				t.Fatalf("New(%q) error: %v", name, err)
			}
			resp, err := h(context.Background(), ev)
			if err != nil {
				t.Fatalf("handler error: %v", err)
			}
			if len(resp.BatchItemFailures) != 0 {
				t.Errorf("response = %+v, want empty", resp)
			}
			if out.Len() == 0 {
				t.Errorf("handler wrote nothing")
			}
		})
	}
}

func TestNewUnknown(t *testing.T) {
	_, err := New("nope", Options{})
	if err == nil {
		t.Fatal("New(\"nope\") error = nil, want one")
	}
	if !errors.Is(err, ErrUnknownHandler) {
		t.Errorf("New(\"nope\") error = %v, want it to wrap ErrUnknownHandler", err)
	}
	for _, want := range append([]string{`"nope"`}, Names()...) {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New(\"nope\") error = %q, want it to contain %s", err, want)
		}
	}
}

func TestRegistryNewErrors(t *testing.T) {
	boom := errors.New("boom")
	r := &registry{factories: map[string]Factory{
		"print":     newPrintHandler,
		"wordcount": newWordCountHandler,
		"failing":   func(Options) (stream.Handler, error) { return nil, boom },
		"nil":       func(Options) (stream.Handler, error) { return nil, nil },
	}}
	tests := []struct {
		name    string
		o       Options
		want    string
		wantErr error
	}{
		{name: "nope", want: `handler "nope": unknown handler; registered: failing, nil, print, wordcount`, wantErr: ErrUnknownHandler},
		{name: "", want: `handler "": unknown handler; registered: failing, nil, print, wordcount`, wantErr: ErrUnknownHandler},
		{name: "failing", want: `handler "failing": boom`, wantErr: boom},
		{name: "nil", want: `handler "nil": factory returned no handler`},
		{name: "wordcount", o: Options{Interval: -1}, want: `handler "wordcount": wordcount: interval -1ns: want zero (default 1s) or more`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := r.new(tt.name, tt.o)
			if err == nil {
				t.Fatalf("new(%q) = %p, nil; want error %q", tt.name, h, tt.want)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("new(%q) error = %q, want %q", tt.name, got, tt.want)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("new(%q) error = %v, want it to wrap %v", tt.name, err, tt.wantErr)
			}
		})
	}
}

func TestRegistryEmpty(t *testing.T) {
	r := &registry{factories: map[string]Factory{}}
	_, err := r.new("print", Options{})
	if got, want := err.Error(), `handler "print": unknown handler; registered: none`; got != want {
		t.Errorf("new on empty registry error = %q, want %q", got, want)
	}
}

func TestRegister(t *testing.T) {
	r := &registry{factories: map[string]Factory{}}
	r.register("echo", nopFactory)
	if got, want := r.names(), []string{"echo"}; !slices.Equal(got, want) {
		t.Errorf("names() = %q, want %q", got, want)
	}
	if _, err := r.new("echo", Options{}); err != nil {
		t.Errorf("new(\"echo\") error: %v", err)
	}

	tests := []struct {
		desc string
		name string
		f    Factory
		want string
	}{
		{desc: "empty name", name: "", f: nopFactory, want: "handlers: Register with an empty name"},
		{desc: "nil factory", name: "other", f: nil, want: `handlers: Register "other" with a nil factory`},
		{desc: "duplicate", name: "echo", f: nopFactory, want: `handlers: Register called twice for "echo"`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			defer func() {
				got := recover()
				if got != tt.want {
					t.Errorf("register(%q) panic = %v, want %q", tt.name, got, tt.want)
				}
			}()
			r.register(tt.name, tt.f)
		})
	}
}
