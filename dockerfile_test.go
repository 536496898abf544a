package riskresetbot_test

// No Docker engine runs in CI, so these tests read the Dockerfile and
// .dockerignore the way the builder would and check what would break a
// build or a deployment: missing files, a wrong -X target, a shell-less
// final stage asked to RUN, a healthcheck the image cannot run.

import (
	"bufio"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd  string // upper case: FROM, RUN, COPY, ...
	args string
	line int
}

// stage is a FROM and the instructions after it.
type stage struct {
	image, name string
	flags       map[string]string
	body        []instruction
}

func parseDockerfile(t *testing.T) []stage {
	t.Helper()
	f, err := os.Open("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var stages []stage
	var pending strings.Builder
	start := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue // comments may sit between continuation lines too
		}
		if pending.Len() == 0 {
			start = n
		}
		if body, more := strings.CutSuffix(line, `\`); more {
			pending.WriteString(body + " ")
			continue
		}
		pending.WriteString(line)
		cmd, args, _ := strings.Cut(pending.String(), " ")
		pending.Reset()
		in := instruction{cmd: strings.ToUpper(cmd), args: strings.TrimSpace(args), line: start}
		if in.cmd == "FROM" {
			flags, rest := cutFlags(in.args)
			fields := strings.Fields(rest)
			s := stage{image: fields[0], flags: flags}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				s.name = fields[2]
			}
			stages = append(stages, s)
			continue
		}
		if len(stages) == 0 {
			if in.cmd != "ARG" {
				t.Fatalf("Dockerfile:%d: %s before the first FROM", in.line, in.cmd)
			}
			continue
		}
		stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if pending.Len() > 0 {
		t.Fatalf("Dockerfile ends inside a continued line")
	}
	return stages
}

// cutFlags splits leading --name=value flags off an instruction's arguments.
func cutFlags(args string) (map[string]string, string) {
	flags := map[string]string{}
	for strings.HasPrefix(args, "--") {
		flag, rest, _ := strings.Cut(args, " ")
		name, value, _ := strings.Cut(strings.TrimPrefix(flag, "--"), "=")
		flags[name] = value
		args = strings.TrimSpace(rest)
	}
	return flags, args
}

// execForm parses a JSON array argument (exec form), failing on shell form:
// distroless has no shell to run it.
func execForm(t *testing.T, in instruction, args string) []string {
	t.Helper()
	var argv []string
	if err := json.Unmarshal([]byte(args), &argv); err != nil || len(argv) == 0 {
		t.Fatalf("Dockerfile:%d: %s must use the exec form [\"...\"], got %s", in.line, in.cmd, args)
	}
	return argv
}

func (s stage) find(cmd string) []instruction {
	var out []instruction
	for _, in := range s.body {
		if in.cmd == cmd {
			out = append(out, in)
		}
	}
	return out
}

func (s stage) only(t *testing.T, cmd string) instruction {
	t.Helper()
	found := s.find(cmd)
	if len(found) != 1 {
		t.Fatalf("stage %q has %d %s instructions, want 1", s.name, len(found), cmd)
	}
	return found[0]
}

// buildRun returns the builder stage's RUN that calls go build.
func buildRun(t *testing.T, s stage) instruction {
	t.Helper()
	for _, in := range s.find("RUN") {
		if strings.Contains(in.args, "go build") {
			return in
		}
	}
	t.Fatalf("stage %q has no RUN ... go build", s.name)
	return instruction{}
}

func goDirective(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no go directive")
	}
	return string(m[1])
}

func modulePath(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^module (\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatal("go.mod has no module directive")
	}
	return string(m[1])
}

func TestDockerfileBuildsWithGoAndRunsOnDistrolessAsNonroot(t *testing.T) {
	stages := parseDockerfile(t)
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stage(s)", len(stages))
	}
	builder, final := stages[0], stages[len(stages)-1]
	if builder.name == "" {
		t.Errorf("the builder stage needs a name (FROM ... AS build) for COPY --from")
	}
	want := "golang:" + goDirective(t) + "-"
	if !strings.HasPrefix(builder.image, want) {
		t.Errorf("builder image %q does not match go.mod's Go version (want %s…)", builder.image, want)
	}
	if final.image != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final image = %q, want gcr.io/distroless/static-debian12:nonroot", final.image)
	}
	if user := final.only(t, "USER"); !slices.Contains([]string{"nonroot", "nonroot:nonroot", "65532", "65532:65532"}, user.args) {
		t.Errorf("final USER = %q, want nonroot", user.args)
	}
	// distroless has no shell: any RUN in the final stage fails the build.
	if runs := final.find("RUN"); len(runs) > 0 {
		t.Errorf("Dockerfile:%d: RUN in the final stage; distroless has no shell", runs[0].line)
	}
}

func TestDockerfileDownloadsModulesBeforeCopyingTheSource(t *testing.T) {
	builder := parseDockerfile(t)[0]
	firstCopy, download, copyAll := -1, -1, -1
	for i, in := range builder.body {
		switch {
		case in.cmd == "COPY" && firstCopy < 0:
			firstCopy = i
			if _, args := cutFlags(in.args); strings.Fields(args)[0] != "go.mod" {
				t.Errorf("Dockerfile:%d: the first COPY should bring go.mod and go.sum alone, got %q", in.line, in.args)
			}
		case in.cmd == "RUN" && strings.Contains(in.args, "go mod download") && download < 0:
			download = i
		case in.cmd == "COPY" && strings.HasPrefix(in.args, ". "):
			copyAll = i
		}
	}
	if !(firstCopy >= 0 && firstCopy < download && download < copyAll) {
		t.Errorf("want COPY go.mod go.sum, RUN go mod download, then COPY . (got positions %d, %d, %d)", firstCopy, download, copyAll)
	}
}

func TestDockerfileCopiesOnlyWhatTheContextHas(t *testing.T) {
	stages := parseDockerfile(t)
	ignore := loadDockerignore(t)
	var names []string
	for i, s := range stages {
		for _, in := range s.find("COPY") {
			flags, args := cutFlags(in.args)
			fields := strings.Fields(args)
			if len(fields) < 2 {
				t.Fatalf("Dockerfile:%d: COPY needs a source and a destination", in.line)
			}
			if from, ok := flags["from"]; ok {
				if !slices.Contains(names, from) {
					t.Errorf("Dockerfile:%d: COPY --from=%s names no earlier stage (have %v)", in.line, from, names)
				}
				continue
			}
			for _, src := range fields[:len(fields)-1] {
				checkContextSource(t, in, src, ignore)
			}
		}
		// A stage can be named by its AS name or its index.
		names = append(names, s.name, strconv.Itoa(i))
	}
}

func checkContextSource(t *testing.T, in instruction, src string, ignore dockerignore) {
	t.Helper()
	matches, err := filepath.Glob(filepath.FromSlash(strings.TrimPrefix(src, "/")))
	if err != nil || len(matches) == 0 {
		t.Errorf("Dockerfile:%d: COPY source %q matches nothing in the repository", in.line, src)
		return
	}
	for _, m := range matches {
		if m != "." && ignore.excludes(filepath.ToSlash(m)) {
			t.Errorf("Dockerfile:%d: COPY source %q is excluded by .dockerignore", in.line, m)
		}
	}
}

func TestDockerfileBuildsAStaticStampedBinary(t *testing.T) {
	stages := parseDockerfile(t)
	builder, final := stages[0], stages[len(stages)-1]
	run := buildRun(t, builder)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/risk-reset-bot"} {
		if !strings.Contains(run.args, want) {
			t.Errorf("Dockerfile:%d: go build lacks %s", run.line, want)
		}
	}
	if fi, err := os.Stat("cmd/risk-reset-bot/main.go"); err != nil || fi.IsDir() {
		t.Errorf("the build target ./cmd/risk-reset-bot has no main.go: %v", err)
	}

	// -X must name a variable that exists, or the linker silently ignores it
	// and every image says "dev".
	m := regexp.MustCompile(`-X ([\w./-]+)\.(\w+)=\$\{?(\w+)\}?`).FindStringSubmatch(run.args)
	if m == nil {
		t.Fatalf("Dockerfile:%d: go build has no -ldflags \"-X pkg.Var=${ARG}\"", run.line)
	}
	pkg, variable, arg := m[1], m[2], m[3]
	dir, ok := strings.CutPrefix(pkg, modulePath(t)+"/")
	if !ok {
		t.Fatalf("-X package %q is outside module %q", pkg, modulePath(t))
	}
	if !declaresVar(t, dir, variable) {
		t.Errorf("-X %s.%s: no file in %s declares var %s", pkg, variable, dir, variable)
	}
	if !declaresArg(builder, arg, run) {
		t.Errorf("Dockerfile:%d: -X uses ${%s} but the builder stage declares no ARG %s before it", run.line, arg, arg)
	}

	// The final stage copies the binary go build wrote.
	out := regexp.MustCompile(`-o (\S+)`).FindStringSubmatch(run.args)
	if out == nil {
		t.Fatalf("Dockerfile:%d: go build has no -o", run.line)
	}
	copied := false
	for _, in := range final.find("COPY") {
		flags, args := cutFlags(in.args)
		if flags["from"] == builder.name && strings.Fields(args)[0] == out[1] {
			copied = true
		}
	}
	if !copied {
		t.Errorf("the final stage does not COPY --from=%s %s", builder.name, out[1])
	}
}

func declaresVar(t *testing.T, dir, name string) bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(filepath.FromSlash(dir), "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	decl := regexp.MustCompile(`(?m)^var ` + regexp.QuoteMeta(name) + `\b`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if decl.Match(b) {
			return true
		}
	}
	return false
}

func declaresArg(s stage, name string, before instruction) bool {
	for _, in := range s.find("ARG") {
		arg, _, _ := strings.Cut(in.args, "=")
		if arg == name && in.line < before.line {
			return true
		}
	}
	return false
}

func TestDockerfileHealthcheckRunsTheBinary(t *testing.T) {
	stages := parseDockerfile(t)
	final := stages[len(stages)-1]
	entry := final.only(t, "ENTRYPOINT")
	entrypoint := execForm(t, entry, entry.args)
	if !slices.Equal(entrypoint, []string{"/risk-reset-bot"}) {
		t.Errorf("ENTRYPOINT = %q, want [\"/risk-reset-bot\"]", entrypoint)
	}
	hc := final.only(t, "HEALTHCHECK")
	flags, rest := cutFlags(hc.args)
	for _, f := range []string{"interval", "timeout"} {
		if flags[f] == "" {
			t.Errorf("HEALTHCHECK lacks --%s", f)
		}
	}
	cmd, ok := strings.CutPrefix(rest, "CMD ")
	if !ok {
		t.Fatalf("HEALTHCHECK %q has no CMD", hc.args)
	}
	if argv := execForm(t, hc, strings.TrimSpace(cmd)); !slices.Equal(argv, []string{entrypoint[0], "healthcheck"}) {
		t.Errorf("HEALTHCHECK CMD = %q, want [%q, \"healthcheck\"]", argv, entrypoint[0])
	}
	if expose := final.only(t, "EXPOSE"); expose.args != "8080" && expose.args != "8080/tcp" {
		t.Errorf("EXPOSE %s, want 8080 (HTTP_ADDR's default)", expose.args)
	}
}

func TestDockerignoreKeepsTheSourceAndDropsSecrets(t *testing.T) {
	ignore := loadDockerignore(t)
	var sources []string
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			sources = append(sources, filepath.ToSlash(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, keep := range append([]string{"go.mod", "go.sum", "internal/buildinfo/buildinfo.go"}, sources...) {
		if ignore.excludes(keep) {
			t.Errorf(".dockerignore excludes %s, which the build needs", keep)
		}
	}
	for _, drop := range []string{".git/config", "risk-reset-bot.env", ".env", "deploy/.env.production", "risk-reset-bot", "testdata/specs/x.json", "bot/parse_test.go"} {
		if !ignore.excludes(drop) {
			t.Errorf(".dockerignore lets %s into the build context", drop)
		}
	}
	if ignore.excludes("cmd/risk-reset-bot/main.go") {
		t.Errorf(".dockerignore's /risk-reset-bot (the local binary) also drops cmd/risk-reset-bot")
	}
}

// dockerignore is .dockerignore's rules in order; the last match wins.
type dockerignore []ignoreRule

type ignoreRule struct {
	re     *regexp.Regexp
	negate bool
}

func loadDockerignore(t *testing.T) dockerignore {
	t.Helper()
	b, err := os.ReadFile(".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var rules dockerignore
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		pattern, negate := strings.CutPrefix(line, "!")
		pattern = strings.TrimPrefix(filepath.ToSlash(filepath.Clean(pattern)), "/")
		rules = append(rules, ignoreRule{re: globRegexp(pattern), negate: negate})
	}
	return rules
}

// globRegexp translates a .dockerignore pattern: "**" spans directories,
// "*" and "?" stay within one path element.
func globRegexp(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pattern); i++ {
		switch {
		case strings.HasPrefix(pattern[i:], "**/"):
			b.WriteString("(.*/)?")
			i += 2
		case strings.HasPrefix(pattern[i:], "**"):
			b.WriteString(".*")
			i++
		case pattern[i] == '*':
			b.WriteString("[^/]*")
		case pattern[i] == '?':
			b.WriteString("[^/]")
		default:
			b.WriteString(regexp.QuoteMeta(pattern[i : i+1]))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// excludes reports whether path (slash-separated, relative to the context)
// is left out; a rule matching a parent directory covers its content.
func (d dockerignore) excludes(path string) bool {
	excluded := false
	for _, r := range d {
		if matchesOrParent(r.re, path) {
			excluded = !r.negate
		}
	}
	return excluded
}

func matchesOrParent(re *regexp.Regexp, path string) bool {
	for p := path; p != "." && p != ""; p = filepath.ToSlash(filepath.Dir(p)) {
		if re.MatchString(p) {
			return true
		}
	}
	return false
}
