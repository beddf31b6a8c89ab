package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/shardline/shardline/shared/awsconf"
)

// The enhanced fan-out rows (issue #18) are written between these
// markers, apart from the peers' section, so that -efo rewrites them
// alone.
const (
	efoBeginMarker = "<!-- efo:begin -->"
	efoEndMarker   = "<!-- efo:end -->"
)

// The targets for enhanced fan-out.
const (
	efoP50MS     = 10  // put → handler p50, ms
	efoP99MS     = 30  // and p99
	efoCPUFactor = 1.5 // CPU per user record at most this × polling's
	efoRSSMB     = 64  // peak RSS at 100 shards
)

// libSource is a library reading from a source.
type libSource struct{ lib, source string }

// efoBacklogRows are the backlog runs of the EFO rows on each fake
// stream: polling Shardline (CBOR GetRecords) over plain HTTP and over
// TLS with HTTP/2, then each fan-out library over TLS.
func efoBacklogRows(efoLibs []string) []libSource {
	rows := []libSource{{"shardline", srcFake}, {"shardline", srcFakeTLS}}
	for _, lib := range efoLibs {
		rows = append(rows, libSource{lib, srcFakeTLS})
	}
	return rows
}

// writeEFOReport writes the section "Enhanced fan-out (issue #18)".
func writeEFOReport(w io.Writer, in reportInput) {
	pick := func(section string, keep func(*result) bool) []*result {
		var out []*result
		for _, x := range in.rows {
			if x.section == section && (keep == nil || keep(x)) {
				out = append(out, x)
			}
		}
		return out
	}
	find := func(section, source, key, lib string) *result { return findRow(in.rows, section, source, key, lib) }
	writeHeader(w, in, "Enhanced fan-out (issue #18)", " `go run ./cmd/compare -efo` runs these rows alone.")
	fmt.Fprintf(w, "- Source: the in-process fake (`internal/fakekinesis`), served by the driver twice: over plain HTTP/1.1 (**fake**) and over TLS with HTTP/2 by ALPN (**fake, TLS + HTTP/2**: a certificate it makes at start, trusted by the children through `AWS_CA_BUNDLE`), as Kinesis serves SubscribeToShard. It pushes each put record to the shard's subscribers at once and a backlog in events of at most 1 MB, paced by HTTP/2 flow control. DynamoDB Local holds the leases.\n")
	fmt.Fprintf(w, "- Libraries: **Shardline, fan-out** = `shared/coordinator` with `ConsumerName` (registered by its `Check`) and its own subscription reader (`fetch.Client.Subscribe`: event-stream framing; the events asked for in CBOR, as the Java SDK asks, and decoded in place, or JSON decoded by hand where an endpoint answers JSON), the subscriptions over a client built as `awsconf` builds `KinesisFanOut` (no overall timeout, %d KiB HTTP/2 receive buffer per stream); **vmware-go-kcl-v2 v1.0.0, fan-out** = its `EnableEnhancedFanOutConsumer` (the SDK's SubscribeToShard and event-stream reader; shard sync %v); **Shardline** = polling with CBOR GetRecords, BatchSize 1000 in every Shardline mode. Each run registers a consumer named after its application.\n\n", awsconf.FanOutStreamBuffer>>10, in.opt.shardSync)

	if xs := pick("efo-backlog", nil); len(xs) > 0 {
		fmt.Fprintf(w, "### Backlog: TRIM_HORIZON to the end, fan-out and polling\n\n")
		fmt.Fprintf(w, "CPU first read→last counts from the child's first GetRecords or SubscribeToShard (the fake tells the driver when it arrives).\n\n")
		backlogTable(w, xs)
		fmt.Fprintf(w, "\nFan-out ÷ polling Shardline (means over runs; CPU below 1: fan-out cheaper):\n\n| stream | fan-out | polling over | records/s | CPU first→last | CPU first read→last | CPU whole | peak RSS |\n|---|---|---|---:|---:|---:|---:|---:|\n")
		for _, e := range xs {
			if !isEFO(e.lib) || len(e.runs) == 0 {
				continue
			}
			ef := mean(e)
			for _, src := range []string{srcFakeTLS, srcFake} {
				p := find("efo-backlog", src, e.ds.key, "shardline")
				if p == nil {
					continue
				}
				pf := mean(p)
				fr := "—"
				if ef.nFR > 0 && pf.nFR > 0 {
					fr = ratio(ef.cpuFR, pf.cpuFR)
				}
				fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", e.ds.name, libName(e.lib), sourceName(src), ratio(ef.rate, pf.rate), ratio(ef.cpuFL, pf.cpuFL), fr, ratio(ef.cpuAll, pf.cpuAll), ratio(ef.rssMB, pf.rssMB))
			}
		}
	}

	lat := pick("latency", func(x *result) bool { return isEFO(x.lib) || x.lib == "shardline" })
	if len(lat) > 0 {
		fmt.Fprintf(w, "\n### Latency at a steady %d user records/s, 4 shards\n\n", in.opt.rate)
		fmt.Fprintf(w, "As in the peers' latency runs (a new stream per run, real PutRecords into the fake, %d records every %v, KPL ones aggregated and put every %v, latency from the put stamp in 1 ms buckets (upper bounds) over the records made after the consumer's first %d, %v of samples). The fan-out libraries read the TLS endpoint; polling Shardline (reads 200 ms apart once caught up) the plain one, as in the peers' section.\n\n",
			max(1, int(float64(in.opt.rate)*in.opt.plainTk.Seconds())), in.opt.plainTk, in.opt.kplFlush, in.opt.warmup, in.opt.latencyDuration)
		latencyTable(w, lat)
	}

	s100 := append(pick("efo-shards100", nil), pick("efo-steady100", nil)...)
	if len(s100) > 0 {
		fmt.Fprintf(w, "\n### Shardline, fan-out, holding 100 shards\n\n")
		fmt.Fprintf(w, "**Backlog**: a 100-shard KPL stream read from TRIM_HORIZON to the end. **Steady**: a new empty 100-shard stream, the consumer started first, then %d plain user records/s put for %v after a warm-up of %d records (each shard a subscription of its own, about %d records/s each).\n\n", in.opt.rate, in.opt.efoSteady, in.opt.warmup, max(in.opt.rate/100, 1))
		fmt.Fprintf(w, "| run | stream | library | runs | user records/s | put rate /s | CPU s per 1M, first read→last | CPU s per 1M, whole process | peak RSS MB (mean / max) | p50 / p99 ms from put |\n|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n")
		for _, x := range s100 {
			kind, label := "backlog", fmt.Sprintf("%s, %d", x.ds.name, x.ds.records)
			if x.section == "efo-steady100" {
				kind, label = "steady", x.ds.name
			}
			if len(x.runs) == 0 {
				fmt.Fprintf(w, "| %s | %s | %s | %s | | | | | | |\n", kind, label, libName(x.lib), failed(x))
				continue
			}
			f := mean(x)
			rate, put, lat := fmt.Sprintf("%.0f", f.rate), "—", "—"
			if x.section == "efo-steady100" {
				rate, put, lat = "—", fmt.Sprintf("%.0f", f.minPutRate), f.fromPut(f.putP50)+" / "+f.fromPut(f.putP99)
			}
			fmt.Fprintf(w, "| %s | %s | %s | %d | %s | %s | %s | %.2f | %.0f / %.0f | %s |\n", kind, label, libName(x.lib), len(x.runs), rate, put, f.firstRead(), f.cpuAll, f.rssMB, f.maxRSSMB, lat)
		}
	}

	fmt.Fprintf(w, "\n### Targets of issue #18\n\n| target | figures | |\n|---|---|---|\n")
	for _, key := range []string{"plain", "kpl"} {
		if s := find("latency", srcFakeTLS, key, "shardline-efo"); s != nil {
			f := mean(s)
			fmt.Fprintf(w, "| fan-out latency from put p50 ≤ %d ms, p99 ≤ %d ms at %d records/s over 4 shards (%s, TLS + HTTP/2; put rate %.0f/s) | p50 %s ms, p99 %s ms (worst run) | %s |\n", efoP50MS, efoP99MS, in.opt.rate, s.ds.name, f.minPutRate, f.fromPut(f.maxPutP50), f.fromPut(f.maxPutP99), mark(f.nPut > 0 && f.maxPutP50 <= efoP50MS && f.maxPutP99 <= efoP99MS))
		}
	}
	for _, d := range []string{"kpl", "plain"} {
		s := find("efo-backlog", srcFakeTLS, d, "shardline-efo")
		p := find("efo-backlog", srcFakeTLS, d, "shardline")
		if s == nil || p == nil {
			continue
		}
		fr := cpuTargetOf(s, []*result{p}, "first read→last", func(f figures) (float64, bool) { return f.cpuFR, f.nFR > 0 }, efoCPUFactor)
		fl := cpuTargetOf(s, []*result{p}, "first→last", func(f figures) (float64, bool) { return f.cpuFL, true }, efoCPUFactor)
		judged, text := fl, fl.text+"; "+fr.text
		if fr.ok {
			judged, text = fr, fr.text+"; "+fl.text
		}
		if h := find("efo-backlog", srcFake, d, "shardline"); h != nil {
			if v := cpuTargetOf(s, []*result{h}, "first read→last", func(f figures) (float64, bool) { return f.cpuFR, f.nFR > 0 }, efoCPUFactor); v.ok {
				text += fmt.Sprintf("; polling over plain HTTP %.2f, fan-out ÷ it %s×", mean(h).cpuFR, ratio(mean(s).cpuFR, mean(h).cpuFR))
			}
		}
		fmt.Fprintf(w, "| fan-out CPU per user record ≤ %.1f× polling's (CBOR GetRecords), both over TLS + HTTP/2 (%s, %d records; judged on %s) | %s | %s |\n", efoCPUFactor, s.ds.name, s.ds.records, judged.name, text, mark(judged.met))
	}
	for _, x := range s100 {
		if len(x.runs) == 0 || x.lib != "shardline-efo" {
			continue
		}
		f := mean(x)
		what := fmt.Sprintf("a backlog of %d KPL user records read from TRIM_HORIZON", x.ds.records)
		if x.section == "efo-steady100" {
			what = fmt.Sprintf("a steady %d plain records/s for %v", in.opt.rate, in.opt.efoSteady)
		}
		fmt.Fprintf(w, "| fan-out peak RSS ≤ %d MB holding 100 shards (%s) | %.0f MB (worst run) | %s |\n", efoRSSMB, what, f.maxRSSMB, mark(f.maxRSSMB <= efoRSSMB))
	}

	fmt.Fprintf(w, "\nNotes:\n\n")
	fmt.Fprintf(w, "- CPU, RSS and latency are taken as in the peers' section. CPU first read→last: the child's CPU (schedstat) at the N-th record minus its CPU when the fake got its first read request, GetRecords or SubscribeToShard, ÷ N.\n")
	if in.fakeCalls != nil {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(in.fakeCalls)) {
			if k == "SubscribeToShard" || strings.Contains(k, "Consumer") {
				parts = append(parts, fmt.Sprintf("%s %d", k, in.fakeCalls[k]))
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(w, "- Fan-out calls the fake served in the whole run: %s.\n", strings.Join(parts, ", "))
		}
	}
	if len(in.protocols) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(in.protocols)) {
			if strings.HasPrefix(k, "SubscribeToShard ") || strings.HasPrefix(k, "GetRecords ") {
				parts = append(parts, fmt.Sprintf("%s %d", k, in.protocols[k]))
			}
		}
		fmt.Fprintf(w, "- Read requests by HTTP version (both endpoints, whole run): %s.\n", strings.Join(parts, ", "))
	}
	writeProfiles(w, in.profiles)
}
