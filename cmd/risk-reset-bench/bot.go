package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// buildBot compiles the bot into dir and returns the binary's path.
func buildBot(ctx context.Context, dir string) (string, error) {
	path := filepath.Join(dir, "risk-reset-bot")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", path, "risk-reset-bot/cmd/risk-reset-bot")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build of the bot: %w", err)
	}
	return path, nil
}

// botProcess is the bot running as a child process, as it runs in
// production, so its memory is its own.
type botProcess struct {
	cmd     *exec.Cmd
	addr    string // health and metrics listener
	exited  chan error
	logTail *tail
}

// startBot runs the bot with environ and waits until it serves /metrics.
func startBot(ctx context.Context, path string, environ []string) (*botProcess, error) {
	cmd := exec.Command(path)
	cmd.Env = environ
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("bot stderr: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the bot: %w", err)
	}
	p := &botProcess{cmd: cmd, exited: make(chan error, 1), logTail: &tail{}}
	addr := make(chan string, 1)
	go p.readLogs(stderr, addr)
	go func() { p.exited <- cmd.Wait() }()
	select {
	case p.addr = <-addr:
		return p, nil
	case err := <-p.exited:
		p.exited <- err
		return nil, fmt.Errorf("the bot exited at start (%v):\n%s", err, p.logTail)
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		return nil, fmt.Errorf("the bot did not start serving /metrics: %w", ctx.Err())
	}
}

// readLogs finds the metrics address in the bot's JSON log and keeps the
// last lines for error reports.
func (p *botProcess) readLogs(r io.Reader, addr chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		p.logTail.add(sc.Text())
		var line struct {
			Message string `json:"message"`
			Addr    string `json:"addr"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && strings.HasPrefix(line.Message, "serving /healthz") {
			addr <- line.Addr
		}
	}
}

// memory reads the bot's resident set size and its peak, in bytes.
func (p *botProcess) memory() (rss, peak int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, 0, fmt.Errorf("reading the bot's memory: %w", err)
	}
	for line := range strings.Lines(string(data)) {
		name, value, _ := strings.Cut(line, ":")
		kb, convErr := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(value), " kB"), 10, 64)
		switch {
		case name == "VmRSS" && convErr == nil:
			rss = kb << 10
		case name == "VmHWM" && convErr == nil:
			peak = kb << 10
		}
	}
	if rss == 0 || peak == 0 {
		return 0, 0, errors.New("no VmRSS or VmHWM in /proc/PID/status")
	}
	return rss, peak, nil
}

// cpuTime returns the CPU time the bot's threads have used, from the
// scheduler's per-thread nanosecond counters, or from the process's clock
// ticks when those are off.
func (p *botProcess) cpuTime() (time.Duration, error) {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/schedstat", p.cmd.Process.Pid))
	var total time.Duration
	for _, task := range tasks {
		data, err := os.ReadFile(task)
		if err != nil {
			continue // the thread ended
		}
		if ns, err := strconv.ParseInt(strings.Fields(string(data))[0], 10, 64); err == nil {
			total += time.Duration(ns)
		}
	}
	if total > 0 {
		return total, nil
	}
	return p.cpuTicks()
}

// cpuTicks reads utime and stime from /proc/PID/stat, in 10 ms ticks.
func (p *botProcess) cpuTicks() (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("reading the bot's CPU time: %w", err)
	}
	// Fields after the command name, which is in parentheses.
	_, rest, _ := strings.Cut(string(data), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0, errors.New("short /proc/PID/stat")
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond, nil
}

// resetPeak restarts VmHWM from the current RSS (Linux: "5" to clear_refs),
// so the next peak read belongs to what follows.
func (p *botProcess) resetPeak() error {
	path := fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid)
	if err := os.WriteFile(path, []byte("5"), 0); err != nil {
		return fmt.Errorf("resetting the bot's peak RSS: %w", err)
	}
	return nil
}

// metric reads one unlabelled sample from the bot's /metrics.
func (p *botProcess) metric(ctx context.Context, name string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+p.addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("GET /metrics: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if value, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return strconv.ParseFloat(value, 64)
		}
	}
	return 0, fmt.Errorf("no %s in /metrics", name)
}

// stop asks the bot to stop as Kubernetes does (SIGTERM) and waits for it.
func (p *botProcess) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		if err != nil {
			return fmt.Errorf("the bot exited with %v:\n%s", err, p.logTail)
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		return errors.New("the bot did not stop within 30s of SIGTERM")
	}
}

// tail keeps the last lines of a log.
type tail struct {
	mu    sync.Mutex
	lines []string
}

const tailLines = 20

func (t *tail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lines = append(t.lines, line)
	if len(t.lines) > tailLines {
		t.lines = t.lines[1:]
	}
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.Join(t.lines, "\n")
}
