package specs

import (
	"bytes"
	"os"
	"testing"
)

// TestSnapshotMatchesShared keeps testdata/specs/ equal to the shared
// contracts, so a clone without ../shared validates against the same text.
func TestSnapshotMatchesShared(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{CloudflareOpenAPI, SlackManifestSchema} {
		snap, err := os.ReadFile(SnapshotPath(root, name))
		if err != nil {
			t.Fatalf("snapshot missing: %v", err)
		}
		shared, err := os.ReadFile(SharedPath(root, name))
		if os.IsNotExist(err) {
			t.Logf("%s: no ../shared copy here; only the snapshot is checked to exist", name)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(snap, shared) {
			t.Errorf("testdata/specs/%s differs from ../shared/%s; copy the shared one over", name, name)
		}
	}
}
