package main

import (
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"
)

// Targets the bot is held to.
const (
	targetAckP99     = 5 * time.Millisecond // with 100 envelopes in flight
	targetIdleRSS    = 25_000_000           // bytes
	targetPeakRSS    = 60_000_000           // bytes, during the burst
	targetOverhead   = 2 * time.Millisecond // bot time per request
	bytesPerMegabyte = 1_000_000
)

type results struct {
	n, burstSize, maxProcs int

	ackCommand1, ackCommand100, ackClick1, ackClick100 []time.Duration
	ackHelp100                                         []time.Duration // answered in the ack, no handler
	clickToReset, resetToReply, overhead               []time.Duration

	idleRSS, peakRSS int64
	peakNote         string // why the peak is not the burst's alone
	burstTook        time.Duration

	perCommand, perApproval cost
	fakes                   fakeCosts
}

func latencies(ts []timing) []time.Duration {
	out := make([]time.Duration, len(ts))
	for i, t := range ts {
		out[i] = t.latency()
	}
	return out
}

// percentile returns the p-th percentile of d by the nearest-rank method.
func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	rank := (p*len(s) + 99) / 100
	return s[max(rank, 1)-1]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f ms", float64(d.Microseconds())/1000) }

func mb(b int64) string { return fmt.Sprintf("%.1f MB", float64(b)/bytesPerMegabyte) }

// verdict compares a measured value with its limit.
func verdict(measured, limit float64) string {
	if measured < limit {
		return "met"
	}
	return fmt.Sprintf("MISSED by %.0f%%", (measured/limit-1)*100)
}

func (r *results) print(w io.Writer) {
	fmt.Fprintf(w, "risk-reset-bench: bot as a child process; fakes in this process, answering at once, no Slack rate limit; GOMAXPROCS %d\n\n", r.maxProcs)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measurement\tsamples\tp50\tp99\ttarget\tresult")
	latency := func(name string, d []time.Duration, target string, limit time.Duration) {
		result := ""
		if limit > 0 {
			result = verdict(float64(percentile(d, 99)), float64(limit))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", name, len(d), ms(percentile(d, 50)), ms(percentile(d, 99)), target, result)
	}
	latency("ack, slash command, 1 in flight", r.ackCommand1, "", 0)
	latency("ack, slash command, 100 in flight", r.ackCommand100, "p99 < 5 ms", targetAckP99)
	latency("ack, 100 `help` in flight (ack path only)", r.ackHelp100, "", 0)
	latency("ack, approve click, 1 in flight", r.ackClick1, "", 0)
	latency("ack, approve click, 100 in flight", r.ackClick100, "p99 < 5 ms", targetAckP99)
	latency("click sent -> reset request at Cloudflare", r.clickToReset, "", 0)
	latency("reset answered -> thread reply at Slack", r.resetToReply, "", 0)
	latency("bot time per request (sum of the two)", r.overhead, "p99 < 2 ms", targetOverhead)
	fakePath := r.fakes.onApprovalPath()
	fmt.Fprintf(tw, "  of which fake round trips (median, 5 calls)\t%d\t%s\t\t\t\n", r.n, ms(fakePath))
	botOnly := percentile(r.overhead, 50) - fakePath
	fmt.Fprintf(tw, "  bot alone, estimated (p50 minus round trips)\t\t%s\t\tp50 < 2 ms\t%s\n", ms(botOnly), verdict(float64(botOnly), float64(targetOverhead)))
	fmt.Fprintf(tw, "RSS idle after connect\t\t%s\t\t< 25 MB\t%s\n", mb(r.idleRSS), verdict(float64(r.idleRSS), targetIdleRSS))
	peak := fmt.Sprintf("RSS peak during the %d-command burst", r.burstSize)
	if r.peakNote != "" {
		peak = "RSS peak " + r.peakNote
	}
	fmt.Fprintf(tw, "%s\t\t%s\t\t< 60 MB\t%s\n", peak, mb(r.peakRSS), verdict(float64(r.peakRSS), targetPeakRSS))
	fmt.Fprintf(tw, "burst of %d commands, all approved: wall time\t\t%s\t\t\t\n", r.burstSize, r.burstTook.Round(time.Millisecond))
	fmt.Fprintf(tw, "bot CPU per command (ack to card), mean\t%d\t%s\t\t\t\n", r.n, ms(r.perCommand.cpu))
	fmt.Fprintf(tw, "bot CPU per approval (ack to outcome), mean\t%d\t%s\t\t\t\n", r.n, ms(r.perApproval.cpu))
	fmt.Fprintf(tw, "allocations per command (ack to card)\t%d\t%.0f (%.0f kB)\t\t\t\n", r.n, r.perCommand.objects, r.perCommand.bytes/1000)
	fmt.Fprintf(tw, "allocations per approval (ack to outcome)\t%d\t%.0f (%.0f kB)\t\t\t\n", r.n, r.perApproval.objects, r.perApproval.bytes/1000)
	_ = tw.Flush()
	fmt.Fprintf(w, "\nfake round trips, median: users.info %s, chat.update (card) %s, chat.postMessage (audit) %s, Cloudflare GET risk %s\n",
		ms(r.fakes.usersInfo), ms(r.fakes.chatUpdate), ms(r.fakes.postMessage), ms(r.fakes.cloudflareRead))
}
