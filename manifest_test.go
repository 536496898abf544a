package riskresetbot_test

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"testing"

	"github.com/dlclark/regexp2"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"sigs.k8s.io/yaml"

	"risk-reset-bot/bot"
	"risk-reset-bot/internal/specs"
)

// manifestJSON reads manifest.yml as Slack reads it: YAML turned to JSON.
func manifestJSON(t *testing.T) []byte {
	t.Helper()
	y, err := os.ReadFile("manifest.yml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatalf("manifest.yml is not valid YAML: %v", err)
	}
	return j
}

func TestManifestValidatesAgainstSlackSchema(t *testing.T) {
	schemaPath, err := specs.Path(specs.SlackManifestSchema)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(schemaPath)
	if err != nil {
		t.Fatal(err)
	}
	schemaDoc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	// Slack's schema uses ECMAScript look-aheads that Go's regexp lacks.
	c.UseRegexpEngine(ecmaRegexp)
	if err := c.AddResource("slack-manifest.schema.json", schemaDoc); err != nil {
		t.Fatal(err)
	}
	schema, err := c.Compile("slack-manifest.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(manifestJSON(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := schema.Validate(doc); err != nil {
		t.Errorf("manifest.yml does not validate against Slack's schema:\n%v", err)
	}
}

func TestManifestDeclaresWhatTheBotUses(t *testing.T) {
	var m struct {
		Features struct {
			SlashCommands []struct {
				Command      string `json:"command"`
				ShouldEscape bool   `json:"should_escape"`
				UsageHint    string `json:"usage_hint"`
			} `json:"slash_commands"`
		} `json:"features"`
		OAuth struct {
			Scopes struct {
				Bot []string `json:"bot"`
			} `json:"scopes"`
		} `json:"oauth_config"`
		Settings struct {
			Interactivity struct {
				IsEnabled bool `json:"is_enabled"`
			} `json:"interactivity"`
			SocketMode bool `json:"socket_mode_enabled"`
		} `json:"settings"`
	}
	if err := json.Unmarshal(manifestJSON(t), &m); err != nil {
		t.Fatal(err)
	}
	got := slices.Sorted(slices.Values(m.OAuth.Scopes.Bot))
	want := slices.Sorted(slices.Values(bot.BotScopes))
	if !slices.Equal(got, want) {
		t.Errorf("manifest bot scopes = %v, the code uses %v", got, want)
	}
	if len(m.Features.SlashCommands) != 1 || m.Features.SlashCommands[0].Command != "/risk-reset" {
		t.Fatalf("manifest must declare exactly /risk-reset, got %+v", m.Features.SlashCommands)
	}
	if sc := m.Features.SlashCommands[0]; !sc.ShouldEscape || sc.UsageHint == "" {
		t.Errorf("/risk-reset needs should_escape on and a usage hint, got %+v", sc)
	}
	if !m.Settings.SocketMode || !m.Settings.Interactivity.IsEnabled {
		t.Errorf("socket mode and interactivity must be on: %+v", m.Settings)
	}
}

// ecmaRegexp compiles JSON Schema patterns as ECMAScript regexps, as the
// JSON Schema specification says they are.
func ecmaRegexp(pattern string) (jsonschema.Regexp, error) {
	re, err := regexp2.Compile(pattern, regexp2.ECMAScript)
	if err != nil {
		return nil, err
	}
	return ecmaRE{re}, nil
}

type ecmaRE struct{ re *regexp2.Regexp }

func (r ecmaRE) MatchString(s string) bool {
	ok, err := r.re.MatchString(s)
	return err == nil && ok
}

func (r ecmaRE) String() string { return r.re.String() }
