package standin

import (
	"slices"
	"strings"
	"testing"
)

func TestTailBuffer(t *testing.T) {
	b := newTailBuffer(10)
	for range 5 {
		b.Write([]byte("0123456"))
	}
	if got := b.String(); got != strings.Repeat("0123456", 5)[25:] {
		t.Errorf("String() = %q", got)
	}
	if len(b.String()) != 10 {
		t.Errorf("len = %d", len(b.String()))
	}
}

func TestEnviron(t *testing.T) {
	t.Setenv("STANDIN_TEST_A", "inherited")
	t.Setenv("STANDIN_TEST_B", "inherited")
	t.Setenv("STANDIN_TEST_C", "inherited")
	env := environ(map[string]string{"STANDIN_TEST_A": "set"}, []string{"STANDIN_TEST_B"}, []string{"STANDIN_TEST_C=extra", "STANDIN_TEST_A=extra", "STANDIN_TEST_C=last"})
	var ours []string
	for _, kv := range env {
		if strings.HasPrefix(kv, "STANDIN_TEST_") {
			ours = append(ours, kv)
		}
	}
	slices.Sort(ours)
	want := []string{"STANDIN_TEST_A=extra", "STANDIN_TEST_C=last"}
	if !slices.Equal(ours, want) {
		t.Errorf("environ: %v, want %v", ours, want)
	}
}

func TestTailString(t *testing.T) {
	s := strings.Repeat("line\n", 100)
	got := tailString(s, 20)
	if !strings.HasPrefix(got, "…\n") || len(got) > 20+len("…\n") {
		t.Errorf("tailString = %q", got)
	}
	if tailString("short", 20) != "short" {
		t.Error("short string changed")
	}
}

func TestFreePorts(t *testing.T) {
	ports, err := freePorts(3)
	if err != nil {
		t.Fatal(err)
	}
	if ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
		t.Errorf("ports not distinct: %v", ports)
	}
}
