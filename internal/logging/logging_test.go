package logging_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"risk-reset-bot/internal/buildinfo"
	"risk-reset-bot/internal/logging"
)

func TestJSONLine(t *testing.T) {
	var buf bytes.Buffer
	logger, err := logging.New(&buf, "info", "json")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	reqLogger := logging.WithRequestID(logger, "req-42")
	reqLogger.Info().Msg("card posted")

	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil {
		t.Fatalf("output %q is not one JSON object: %v", buf.String(), err)
	}
	want := map[string]any{
		"level":                "info",
		"message":              "card posted",
		logging.FieldRequestID: "req-42",
		"service":              "risk-reset-bot",
		"version":              buildinfo.Version,
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("field %q = %v, want %v (line %s)", k, line[k], v, buf.String())
		}
	}

	ts, _ := line["time"].(string)
	parsed, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		t.Fatalf("time %q is not RFC 3339: %v", ts, err)
	}
	if !strings.HasSuffix(ts, "Z") {
		t.Errorf("time %q is not in UTC", ts)
	}
	if d := time.Since(parsed); d < -time.Second || d > time.Minute {
		t.Errorf("time %q is %v away from now", ts, d)
	}
}

func TestEmptyFormatAndLevelMeanJSONAtInfo(t *testing.T) {
	var buf bytes.Buffer
	logger, err := logging.New(&buf, "", "")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	logger.Debug().Msg("hidden")
	logger.Info().Msg("shown")

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 1 || !json.Valid([]byte(lines[0])) || !strings.Contains(lines[0], "shown") {
		t.Errorf("output = %q, want one JSON line with the info message only", buf.String())
	}
}

func TestLevelFilters(t *testing.T) {
	var buf bytes.Buffer
	logger, err := logging.New(&buf, "WARN", "json")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	logger.Info().Msg("routine")
	logger.Warn().Msg("odd")

	if out := buf.String(); strings.Contains(out, "routine") || !strings.Contains(out, "odd") {
		t.Errorf("at warn level output = %q, want only the warning", out)
	}
}

func TestConsoleFormat(t *testing.T) {
	var buf bytes.Buffer
	logger, err := logging.New(&buf, "debug", "console")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	reqLogger := logging.WithRequestID(logger, "req-7")
	reqLogger.Debug().Str("target", "alice@example.com").Msg("resolving target")

	out := buf.String()
	for _, want := range []string{"DBG", "resolving target", "request_id=req-7", "target=alice@example.com", "service=risk-reset-bot"} {
		if !strings.Contains(out, want) {
			t.Errorf("console output %q does not contain %q", out, want)
		}
	}
	if json.Valid(buf.Bytes()) {
		t.Errorf("console output %q is JSON", out)
	}
	if strings.Contains(out, "\x1b[") {
		t.Errorf("console output to a buffer has colour codes: %q", out)
	}
}

func TestNewRejectsUnknownSettings(t *testing.T) {
	tests := []struct{ level, format, want string }{
		{"verbose", "json", `unknown level "verbose"`},
		{"disabled", "json", `unknown level "disabled"`},
		{"info", "logfmt", `unknown format "logfmt"`},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		_, err := logging.New(&buf, tt.level, tt.format)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%q, %q) error = %v, want one containing %s", tt.level, tt.format, err, tt.want)
		}
	}
}
