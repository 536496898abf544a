// Package specs finds the contract files that tests validate against:
// Cloudflare's OpenAPI subset and Slack's app-manifest schema. The shared
// folder beside the repository (../shared/) is authoritative; a clone
// without it uses the snapshot in testdata/specs/, which a test keeps equal
// to the shared copy whenever both exist.
package specs

import (
	"fmt"
	"os"
	"path/filepath"
)

// The contract files.
const (
	CloudflareOpenAPI   = "cloudflare-openapi-subset.json"
	SlackManifestSchema = "slack-manifest.schema.json"
)

// Path returns where to read the named contract file.
func Path(name string) (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	for _, p := range []string{SharedPath(root, name), SnapshotPath(root, name)} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s found neither in ../shared/ nor in testdata/specs/", name)
}

// SharedPath is the authoritative copy beside the repository.
func SharedPath(root, name string) string { return filepath.Join(root, "..", "shared", name) }

// SnapshotPath is the copy kept in the repository.
func SnapshotPath(root, name string) string { return filepath.Join(root, "testdata", "specs", name) }

// moduleRoot walks up from the working directory (the package directory
// under go test) to the directory holding go.mod.
func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("finding the module root: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		dir = parent
	}
}

// ModuleRoot returns the directory holding go.mod.
func ModuleRoot() (string, error) { return moduleRoot() }
