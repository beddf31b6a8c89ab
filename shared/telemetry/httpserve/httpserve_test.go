package httpserve

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/shardline/shardline/shared/coordinator"
)

// fakeWorker is a worker whose snapshot the test sets.
type fakeWorker struct {
	mu   sync.Mutex
	snap coordinator.Snapshot
}

func (f *fakeWorker) Snapshot() coordinator.Snapshot {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap
}

func (f *fakeWorker) set(s coordinator.Snapshot) {
	f.mu.Lock()
	f.snap = s
	f.mu.Unlock()
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestProbes: /readyz is 503 before the first lease round, 200 after it;
// /healthz is 200 until the worker stops, then both are 503; /metrics is
// the handler given.
func TestProbes(t *testing.T) {
	w := &fakeWorker{}
	metrics := http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) { io.WriteString(rw, "shardline_x 1\n") })
	s, err := Start(Config{Addr: "127.0.0.1:0", Worker: w, Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	base := "http://" + s.Addr().String()
	steps := []struct {
		name          string
		snap          coordinator.Snapshot
		health, ready int
	}{
		{"starting", coordinator.Snapshot{}, 200, 503},
		{"ready without leases", coordinator.Snapshot{Ready: true}, 200, 200},
		{"ready with leases", coordinator.Snapshot{Ready: true, CurrentLeases: 3}, 200, 200},
		{"stopped", coordinator.Snapshot{Ready: true, Stopped: true}, 503, 503},
	}
	for _, st := range steps {
		w.set(st.snap)
		if code, body := get(t, base+"/healthz"); code != st.health {
			t.Errorf("%s: /healthz %d %q, want %d", st.name, code, body, st.health)
		}
		if code, body := get(t, base+"/readyz"); code != st.ready {
			t.Errorf("%s: /readyz %d %q, want %d", st.name, code, body, st.ready)
		}
	}
	if code, body := get(t, base+"/metrics"); code != 200 || body != "shardline_x 1\n" {
		t.Errorf("/metrics %d %q, want the handler's answer", code, body)
	}
	if code, _ := get(t, base+"/other"); code != 404 {
		t.Errorf("/other %d, want 404", code)
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Error("the server still answers after Close")
	}
}

// TestBusyAddress: an address already bound is an error at Start that
// names the setting and the address.
func TestBusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	addr := ln.Addr().String()
	s, err := Start(Config{Addr: addr, Worker: &fakeWorker{}})
	if err == nil {
		s.Close()
		t.Fatalf("Start on busy %s: no error", addr)
	}
	if msg := err.Error(); !strings.Contains(msg, "-metrics-addr "+addr) || !strings.Contains(msg, "address already in use") {
		t.Errorf("error %q, want it to name -metrics-addr %s and say the address is in use", msg, addr)
	}
}
