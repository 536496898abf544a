package config

import (
	"bufio"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// envVars lists every variable the configuration reads.
func envVars() []string {
	var names []string
	t := reflect.TypeFor[rawEnv]()
	for i := range t.NumField() {
		names = append(names, t.Field(i).Tag.Get("env"))
	}
	return names
}

// TestREADMEDocumentsEveryVariable keeps the README's configuration table in
// step with what the program reads: a variable an operator cannot find is a
// variable nobody sets.
func TestREADMEDocumentsEveryVariable(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var table strings.Builder
	for line := range strings.Lines(string(readme)) {
		if strings.HasPrefix(line, "| `") {
			table.WriteString(line)
		}
	}
	for _, name := range envVars() {
		if !strings.Contains(table.String(), "`"+name+"`") {
			t.Errorf("README configuration table does not mention %s", name)
		}
	}
}

// TestEnvExampleLoads checks that the example file a newcomer copies uses
// only real variables and that, as it stands, it fails only on the secrets
// left to fill in, each named; once they are filled in, it loads.
func TestEnvExampleLoads(t *testing.T) {
	f, err := os.Open("../risk-reset-bot.env.example")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	known := map[string]bool{}
	for _, name := range envVars() {
		known[name] = true
	}
	var environ []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, ok := strings.Cut(line, "=")
		if !ok || !known[name] {
			t.Errorf("example line %q is not VAR=value with a known variable", line)
		}
		environ = append(environ, line)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	_, err = Load(environ)
	verr, ok := errors.AsType[*ValidationError](err)
	if !ok {
		t.Fatalf("example as it stands: Load error = %v, want the unfilled secrets named", err)
	}
	var named []string
	for _, p := range verr.Problems {
		if !strings.Contains(p.Message, "placeholder") {
			t.Errorf("example as it stands: unexpected problem %s", p)
		}
		named = append(named, p.Var)
	}
	if want := []string{"SLACK_BOT_TOKEN", "SLACK_APP_TOKEN", "CLOUDFLARE_API_TOKEN"}; !slices.Equal(named, want) {
		t.Errorf("example as it stands names %v, want %v", named, want)
	}

	for i, line := range environ {
		environ[i] = strings.ReplaceAll(line, examplePlaceholder, "filled-in-")
	}
	if _, err := Load(environ); err != nil {
		t.Errorf("example with its secrets filled in does not load: %v", err)
	}
}
