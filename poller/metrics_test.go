package main

import (
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shardline/shardline/shared/testwait"
)

// sample is one line of Prometheus' text format.
type sample struct {
	name   string
	labels map[string]string
	value  float64
}

var (
	sampleLine = regexp.MustCompile(`^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$`)
	labelPair  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)
)

// parseSamples reads the samples of a /metrics page in the text format.
func parseSamples(t *testing.T, page string) []sample {
	t.Helper()
	var out []sample
	for _, line := range strings.Split(page, "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := sampleLine.FindStringSubmatch(line)
		if m == nil {
			t.Fatalf("/metrics line %q is not a sample", line)
		}
		v, err := strconv.ParseFloat(m[3], 64)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		s := sample{name: m[1], labels: map[string]string{}, value: v}
		for _, l := range labelPair.FindAllStringSubmatch(m[2], -1) {
			s.labels[l[1]] = l[2]
		}
		out = append(out, s)
	}
	return out
}

// scrape gets a page of the poller's endpoint.
func scrape(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// metricsAddr waits for the line where the poller says which address its
// endpoint listens on (it was given port 0).
func metricsAddr(t *testing.T, p *proc) string {
	t.Helper()
	re := regexp.MustCompile(`serving /metrics.*addr"?[=:]"?(127\.0\.0\.1:\d+)`)
	var addr string
	testwait.Until(t, 30*time.Second, "the poller to say where /metrics listens", func() bool {
		if m := re.FindStringSubmatch(p.errOut.String()); m != nil {
			addr = m[1]
			return true
		}
		select {
		case <-p.done:
			t.Fatalf("the poller exited before serving /metrics; stderr:\n%s", p.errOut.String())
		default:
		}
		return false
	})
	return addr
}

// TestPrometheusEndpoint: a poller with -metrics-addr on a free loopback
// port serves /metrics where shardline_records_processed_total, summed
// over its shards, reaches the records put, and shardline_current_leases
// is the number of leases the table says it owns; /healthz and /readyz
// answer 200 while it runs. A second poller given the same (busy) address
// fails at startup in one line with exit code 1.
func TestPrometheusEndpoint(t *testing.T) {
	e := newEnv(t, 2)
	const n, worker = 300, "w-prom"
	e.put(t, n)
	p := e.startPoller(t, "run", "-handler", "print", "-initial-position", "TRIM_HORIZON", "-worker-id", worker,
		"-metrics-addr", "127.0.0.1:0")
	base := "http://" + metricsAddr(t, p)

	var samples []sample
	var processed, leases float64
	var owned int
	testwait.Until(t, time.Minute, "records processed = records put, current leases = leases owned", func() bool {
		if code, _ := scrape(t, base+"/readyz"); code != http.StatusOK {
			return false // the lease table may not exist yet
		}
		code, page := scrape(t, base+"/metrics")
		if code != http.StatusOK {
			t.Fatalf("/metrics answered %d:\n%s", code, page)
		}
		samples = parseSamples(t, page)
		processed, leases = 0, -1
		for _, s := range samples {
			switch s.name {
			case "shardline_records_processed_total":
				processed += s.value
			case "shardline_current_leases":
				leases = s.value
			}
		}
		owned = 0
		for _, l := range leasesOf(t, e) {
			if l.Owner == worker {
				owned++
			}
		}
		return processed == n && leases == float64(owned) && owned > 0
	})
	t.Logf("records processed %v, current leases %v, leases owned in the table %d", processed, leases, owned)

	shards := map[string]bool{}
	buckets := 0
	for _, s := range samples {
		switch s.name {
		case "shardline_records_processed_total":
			if s.labels["operation"] != "ProcessTask" || s.labels["worker_identifier"] != worker || s.labels["shard_id"] == "" {
				t.Errorf("records processed labels %v: want operation ProcessTask, worker_identifier %s, a shard_id", s.labels, worker)
			}
			shards[s.labels["shard_id"]] = true
		case "shardline_kinesis_data_fetcher_get_records_time_seconds_bucket":
			buckets++
		}
	}
	if len(shards) != 2 {
		t.Errorf("records processed for shards %v, want both", shards)
	}
	if buckets == 0 {
		t.Error("no GetRecords time histogram buckets")
	}
	if !strings.Contains(scrapeBody(t, base+"/metrics"), "go_goroutines ") {
		t.Error("/metrics lacks the Go runtime's metrics")
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := scrape(t, base+path); code != http.StatusOK {
			t.Errorf("%s answered %d %q while the poller runs, want 200", path, code, body)
		}
	}

	busy := e.startPoller(t, "run", "-handler", "print", "-worker-id", "w-busy", "-metrics-addr", strings.TrimPrefix(base, "http://"))
	if code := busy.wait(t, time.Minute); code != 1 {
		t.Errorf("poller on a busy -metrics-addr: exit code %d, want 1; stderr:\n%s", code, busy.errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(busy.errOut.String()), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "cannot start: -metrics-addr "+strings.TrimPrefix(base, "http://")) || !strings.Contains(last, "address already in use") {
		t.Errorf("busy -metrics-addr: last stderr line %q, want it to name the setting, the address and the reason", last)
	}

	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	if code := p.wait(t, time.Minute); code != 0 {
		t.Fatalf("exit code after SIGTERM = %d, want 0", code)
	}
}

func scrapeBody(t *testing.T, url string) string {
	t.Helper()
	_, body := scrape(t, url)
	return body
}
