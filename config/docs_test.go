package config

import (
	"bufio"
	"os"
	"reflect"
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
// only real variables and is valid as it stands, so that the first start
// with it fails on credentials, not on syntax.
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
	if _, err := Load(environ); err != nil {
		t.Errorf("example does not load: %v", err)
	}
}
