// Command risk-reset-bench measures the bot under load and prints a table
// against its targets: ack latency with 1 and 100 envelopes in flight, the
// bot's own time between an approval click and the Cloudflare reset and
// between Cloudflare's answer and the thread reply, memory idle and during
// a burst of commands, and CPU time and allocations per command and per
// approval.
//
// The bot runs as a child process, built from this module, so its memory,
// CPU time and allocations are its own; the Slack and Cloudflare fakes run in this
// process and answer at once, with no rate limit, so the figures are the
// bot's and not Slack's one-message-per-second-per-channel rule. Ack
// latency is timed on the Socket Mode connection next to the bot, by a tap
// that also releases the 100 envelopes of a wave back to back.
//
//	go run ./cmd/risk-reset-bench [-n 500] [-burst 200] [-bot path]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"time"
)

func main() {
	n := flag.Int("n", 500, "requests per latency measurement")
	burstSize := flag.Int("burst", 200, "commands sent at once in the burst")
	botPath := flag.String("bot", "", "bot binary to measure (default: build cmd/risk-reset-bot)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 15*time.Minute)
	defer cancel()
	res, err := measure(ctx, *n, *burstSize, *botPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "risk-reset-bench:", err)
		os.Exit(1)
	}
	res.print(os.Stdout)
}

// measure starts the fakes and the bot and runs every measurement.
func measure(ctx context.Context, n, burstSize int, botPath string) (*results, error) {
	tb := &benchTB{}
	defer tb.close()
	rig := newRig(ctx, tb, 2*n+burstSize)
	if botPath == "" {
		dir, err := os.MkdirTemp("", "risk-reset-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		if botPath, err = buildBot(ctx, dir); err != nil {
			return nil, err
		}
	}
	bot, err := startBot(ctx, botPath, rig.environ())
	if err != nil {
		return nil, err
	}
	res, err := run(ctx, rig, bot, n, burstSize)
	if stopErr := bot.stop(); err == nil && stopErr != nil {
		err = stopErr
	}
	return res, err
}

// run measures, in order: the idle bot; commands and approvals one at a
// time; help commands, commands and approvals 100 at a time; a burst; and
// last the fakes' own round trips.
func run(ctx context.Context, rig *rig, bot *botProcess, n, burstSize int) (*results, error) {
	res := &results{n: n, burstSize: burstSize, maxProcs: runtime.GOMAXPROCS(0)}
	if err := rig.slack.WaitHellos(ctx, 1); err != nil {
		return nil, fmt.Errorf("the bot did not connect: %w", err)
	}
	var err error
	if res.idleRSS, _, err = bot.memory(); err != nil {
		return nil, err
	}
	one, hundred := rig.take(n), rig.take(n)
	if err := measureOneAtATime(ctx, rig, bot, one, res); err != nil {
		return nil, err
	}
	if err := measureConcurrent(rig, hundred, 100, res); err != nil {
		return nil, err
	}
	if err := measureBurst(rig, bot, rig.take(burstSize), res); err != nil {
		return nil, err
	}
	if res.fakes, err = rig.calibrate(ctx, n, one[0]); err != nil {
		return nil, fmt.Errorf("timing the fakes: %w", err)
	}
	return res, nil
}

func measureOneAtATime(ctx context.Context, rig *rig, bot *botProcess, targets []target, res *results) error {
	var err error
	res.perCommand, err = costOf(ctx, bot, func() error {
		for _, w := range waves(targets, 1) {
			acks, err := rig.commandWave(w)
			if err != nil {
				return err
			}
			res.ackCommand1 = append(res.ackCommand1, latencies(acks)...)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("commands one at a time: %w", err)
	}
	var flows []flow
	res.perApproval, err = costOf(ctx, bot, func() error {
		flows, err = rig.approveOneByOne(targets)
		return err
	})
	if err != nil {
		return fmt.Errorf("approvals one at a time: %w", err)
	}
	for _, f := range flows {
		res.ackClick1 = append(res.ackClick1, f.click.latency())
		res.clickToReset = append(res.clickToReset, f.resetReceived.Sub(f.click.sent))
		res.resetToReply = append(res.resetToReply, f.replyReceived.Sub(f.resetAnswered))
		res.overhead = append(res.overhead, f.resetReceived.Sub(f.click.sent)+f.replyReceived.Sub(f.resetAnswered))
	}
	res.perCommand.per(len(targets))
	res.perApproval.per(len(targets))
	return nil
}

func measureConcurrent(rig *rig, targets []target, size int, res *results) error {
	for _, w := range waves(targets, size) {
		help, err := rig.helpWave(w)
		if err != nil {
			return fmt.Errorf("help commands %d at a time: %w", size, err)
		}
		res.ackHelp100 = append(res.ackHelp100, latencies(help)...)
		acks, err := rig.commandWave(w)
		if err != nil {
			return fmt.Errorf("commands %d at a time: %w", size, err)
		}
		res.ackCommand100 = append(res.ackCommand100, latencies(acks)...)
		if acks, err = rig.approveWave(w); err != nil {
			return fmt.Errorf("approvals %d at a time: %w", size, err)
		}
		res.ackClick100 = append(res.ackClick100, latencies(acks)...)
	}
	return nil
}

// measureBurst sends every command at once and approves each card as it
// appears; the peak RSS is counted from just before the burst.
func measureBurst(rig *rig, bot *botProcess, targets []target, res *results) error {
	if err := bot.resetPeak(); err != nil {
		res.peakNote = "since the bot started (" + err.Error() + ")"
	}
	began := time.Now()
	if err := rig.burst(targets); err != nil {
		return err
	}
	res.burstTook = time.Since(began)
	var err error
	_, res.peakRSS, err = bot.memory()
	return err
}

// cost is what the bot spent on some work: heap objects, heap bytes and
// CPU time, divided per unit once per is called.
type cost struct {
	objects, bytes float64
	cpu            time.Duration
}

func (c *cost) per(n int) {
	c.objects /= float64(n)
	c.bytes /= float64(n)
	c.cpu /= time.Duration(n)
}

// costOf runs work and returns what the bot process spent meanwhile: heap
// allocations from its Go runtime metrics (which include serving those
// two scrapes) and CPU time from /proc.
func costOf(ctx context.Context, bot *botProcess, work func() error) (cost, error) {
	before, err := bot.sample(ctx)
	if err != nil {
		return cost{}, err
	}
	if err := work(); err != nil {
		return cost{}, err
	}
	after, err := bot.sample(ctx)
	if err != nil {
		return cost{}, err
	}
	return cost{objects: after.objects - before.objects, bytes: after.bytes - before.bytes, cpu: after.cpu - before.cpu}, nil
}

func (p *botProcess) sample(ctx context.Context) (cost, error) {
	var c cost
	var err error
	if c.objects, err = p.metric(ctx, "go_memstats_mallocs_total"); err != nil {
		return cost{}, err
	}
	if c.bytes, err = p.metric(ctx, "go_memstats_alloc_bytes_total"); err != nil {
		return cost{}, err
	}
	if c.cpu, err = p.cpuTime(); err != nil {
		return cost{}, err
	}
	return c, nil
}
